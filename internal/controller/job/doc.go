// Package job is the job controller: it runs a Job's pods until enough of
// them succeed (or, for Indexed jobs, every index has succeeded), as
// upstream does.
//
// Every pod it creates carries the batch.kubernetes.io/job-tracking
// finalizer, so a finished pod cannot vanish before it is counted. Counting
// is two-phase and exactly-once: a newly finished pod's uid is first
// written to status.uncountedTerminatedPods, then its finalizer is
// removed, then it moves into status.succeeded/failed. A pod without the
// finalizer is never counted again; a stale job cache makes the status
// write conflict rather than count twice.
//
// Failures: podFailurePolicy rules (MatchPodFailurePolicy) may ignore a
// failure, count it, fail its index or fail the job; counted failures over backoffLimit
// fail it, as does activeDeadlineSeconds. Replacement pods wait an
// exponential backoff (RemainingBackoff: 10 s doubling, at most 6 min)
// after consecutive failures, kept in memory per job as upstream does.
//
// Backoff limit per index (Indexed jobs with spec.backoffLimitPerIndex):
// each pod carries batch.kubernetes.io/job-index-failure-count, the counted
// failures of its index before it; a counted failure that takes the index
// over the limit, or matches a FailIndex rule, adds the index to
// status.failedIndexes and it is never retried. Retries wait a backoff of
// their own index. More failed indexes than spec.maxFailedIndexes fail the
// job (MaxFailedIndexesExceeded); otherwise it fails with FailedIndexes once
// every index has completed or failed (FailedIndexesOutcome).
// Finishing takes two steps as current upstream: FailureTarget or
// SuccessCriteriaMet first (remaining pods are deleted), then Failed or
// Complete once no pod is left running or uncounted.
package job
