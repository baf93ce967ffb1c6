package job

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// Backoff delays between pod recreations after failures, as upstream:
// 10 s doubling per consecutive failure, capped at 6 minutes.
const (
	BackoffBase = 10 * time.Second
	BackoffMax  = 6 * time.Minute
)

// RemainingBackoff is how long to wait before creating pods again after
// failures consecutive failures (since the last success), the last one at
// lastFailure; zero when no wait is needed.
func RemainingBackoff(failures int, lastFailure, now time.Time) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := BackoffBase
	for i := 1; i < failures && d < BackoffMax; i++ {
		d *= 2
	}
	d = min(d, BackoffMax)
	if rem := lastFailure.Add(d).Sub(now); rem > 0 {
		return rem
	}
	return 0
}

// MatchPodFailurePolicy returns the action of the first rule of policy that
// matches the failed pod and a message describing the match; nil when no
// rule matches (the failure counts as usual).
func MatchPodFailurePolicy(policy *batchv1.PodFailurePolicy, pod *corev1.Pod) (*batchv1.PodFailurePolicyAction, string) {
	if policy == nil {
		return nil, ""
	}
	for i, rule := range policy.Rules {
		if r := rule.OnExitCodes; r != nil {
			if c := matchExitCodes(r, pod); c != nil {
				return &rule.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					c.Name, pod.Namespace, pod.Name, c.State.Terminated.ExitCode, rule.Action, i)
			}
		}
		for _, pat := range rule.OnPodConditions {
			for _, cond := range pod.Status.Conditions {
				want := pat.Status
				if want == "" {
					want = corev1.ConditionTrue
				}
				if cond.Type == pat.Type && cond.Status == want {
					return &rule.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
						pod.Namespace, pod.Name, cond.Type, rule.Action, i)
				}
			}
		}
	}
	return nil, ""
}

func matchExitCodes(r *batchv1.PodFailurePolicyOnExitCodesRequirement, pod *corev1.Pod) *corev1.ContainerStatus {
	check := func(statuses []corev1.ContainerStatus) *corev1.ContainerStatus {
		for i := range statuses {
			s := &statuses[i]
			if r.ContainerName != nil && *r.ContainerName != s.Name {
				continue
			}
			t := s.State.Terminated
			if t == nil || t.ExitCode == 0 {
				continue
			}
			in := slices.Contains(r.Values, t.ExitCode)
			if (r.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn) == in {
				return s
			}
		}
		return nil
	}
	if s := check(pod.Status.ContainerStatuses); s != nil {
		return s
	}
	return check(pod.Status.InitContainerStatuses)
}

// Indexes is a set of completion indexes.
type Indexes map[int]bool

// ParseIndexes reads the "1,3-5" form of status.completedIndexes; bad parts
// and indexes at or over completions are dropped.
func ParseIndexes(s string, completions int) Indexes {
	out := Indexes{}
	for _, part := range strings.Split(s, ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil {
			continue
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil {
				continue
			}
		}
		for i := a; i <= b && i < completions; i++ {
			if i >= 0 {
				out[i] = true
			}
		}
	}
	return out
}

// String renders the set in upstream's compressed form, ranges of three or
// more as "a-b" ("1,3-5"); two adjacent indexes are listed ("1,2").
func (ix Indexes) String() string {
	keys := make([]int, 0, len(ix))
	for k := range ix {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for i := 0; i < len(keys); {
		j := i
		for j+1 < len(keys) && keys[j+1] == keys[j]+1 {
			j++
		}
		switch {
		case j == i:
			parts = append(parts, strconv.Itoa(keys[i]))
		case j == i+1:
			parts = append(parts, strconv.Itoa(keys[i]), strconv.Itoa(keys[j]))
		default:
			parts = append(parts, fmt.Sprintf("%d-%d", keys[i], keys[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

// podIndex is the completion index of a pod of an Indexed job, or -1.
func podIndex(p *corev1.Pod) int {
	v, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		v, ok = p.Labels[batchv1.JobCompletionIndexAnnotation]
	}
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return -1
	}
	return n
}

// IndexFailureCountAnnotation holds, on each pod of a job with
// backoffLimitPerIndex, how many counted failures its index had before the
// pod was created.
const IndexFailureCountAnnotation = "batch.kubernetes.io/job-index-failure-count"

// Reasons of the FailureTarget/Failed conditions of backoff limit per index.
const (
	ReasonMaxFailedIndexesExceeded = "MaxFailedIndexesExceeded"
	ReasonFailedIndexes            = "FailedIndexes"
)

// IndexesToCreate lists, lowest first, at most limit indexes below
// completions that are in none of the skip sets (completed, failed,
// running, waiting for backoff...).
func IndexesToCreate(completions, limit int, skip ...Indexes) []int {
	var out []int
	for ix := 0; ix < completions && len(out) < limit; ix++ {
		if !slices.ContainsFunc(skip, func(s Indexes) bool { return s[ix] }) {
			out = append(out, ix)
		}
	}
	return out
}

// IndexFailed reports whether a counted failure of a pod that carried
// prevFailures in its failure-count annotation marks its index failed:
// either the policy said FailIndex, or the index has now failed more than
// backoffLimitPerIndex times.
func IndexFailed(prevFailures int, backoffLimitPerIndex int32, failIndex bool) bool {
	return failIndex || prevFailures+1 > int(backoffLimitPerIndex)
}

// FailedIndexesOutcome is the FailureTarget reason and message for a job
// with backoffLimitPerIndex, or "" while it may go on: more failed indexes
// than maxFailedIndexes fail it at once; otherwise, once every index has
// completed or failed and at least one failed, it fails with FailedIndexes.
func FailedIndexesOutcome(completions int, completed, failed Indexes, maxFailedIndexes *int32) (reason, msg string) {
	nFailed := 0
	done := 0
	for ix := 0; ix < completions; ix++ {
		switch {
		case failed[ix]:
			nFailed++
			done++
		case completed[ix]:
			done++
		}
	}
	switch {
	case maxFailedIndexes != nil && nFailed > int(*maxFailedIndexes):
		return ReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes"
	case nFailed > 0 && done >= completions:
		return ReasonFailedIndexes, "Job has failed indexes"
	}
	return "", ""
}

// IndexFailures is what the failed pods of one index tell: the counted
// failures so far (the failure-count annotation of its next pod) and when
// the latest of them ended.
type IndexFailures struct {
	Count int
	Last  time.Time
}

// CountIndexFailures reads, per index, the failures of an Indexed job's
// pods: a failed pod (not ignored by the pod failure policy) that carried
// count n in its annotation means the index failed n+1 times. now stands in
// for unknown finish times.
func CountIndexFailures(job *batchv1.Job, pods []*corev1.Pod, now time.Time) map[int]IndexFailures {
	out := map[int]IndexFailures{}
	for _, p := range pods {
		ix := podIndex(p)
		if ix < 0 || !podFailed(job, p) {
			continue
		}
		if a, _ := MatchPodFailurePolicy(job.Spec.PodFailurePolicy, p); a != nil && *a == batchv1.PodFailurePolicyActionIgnore {
			continue
		}
		n := podFailureCount(p) + 1
		t := finishTime(p, now)
		if cur, ok := out[ix]; !ok || n > cur.Count || (n == cur.Count && t.After(cur.Last)) {
			out[ix] = IndexFailures{Count: n, Last: t}
		}
	}
	return out
}

// podFailureCount is the pod's failure-count annotation, 0 when absent or bad.
func podFailureCount(p *corev1.Pod) int {
	n, err := strconv.Atoi(p.Annotations[IndexFailureCountAnnotation])
	if err != nil || n < 0 {
		return 0
	}
	return n
}
