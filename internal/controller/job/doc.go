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
// failure, count it or fail the job; counted failures over backoffLimit
// fail it, as does activeDeadlineSeconds. Replacement pods wait an
// exponential backoff (RemainingBackoff: 10 s doubling, at most 6 min)
// after consecutive failures, kept in memory per job as upstream does.
// Finishing takes two steps as current upstream: FailureTarget or
// SuccessCriteriaMet first (remaining pods are deleted), then Failed or
// Complete once no pod is left running or uncounted.
package job
