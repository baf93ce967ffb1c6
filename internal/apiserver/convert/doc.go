// Package convert converts objects between the API versions (and groups)
// that upstream Kubernetes serves over one storage:
//
//   - autoscaling/v2 and autoscaling/v1 HorizontalPodAutoscaler. v1 only
//     knows a CPU utilization target; the other metrics, the current metrics,
//     the conditions and the scaling behavior survive a trip through v1 in
//     the annotations upstream uses (autoscaling.alpha.kubernetes.io/metrics,
//     .../current-metrics, .../conditions, .../behavior), with upstream's
//     encoding, so objects written by either server read back the same.
//   - core/v1 Event and events.k8s.io/v1 Event, which carry the same data
//     under different field names.
//
// Convert is a pure function: it never mutates its argument and returns a
// new object whose TypeMeta names the target. Converting to the object's own
// version returns the argument itself. Lists of the supported kinds convert
// item by item.
//
// A conversion through v1 and back is lossless for HPAs as clients write
// them, with upstream's two quirks: metrics come back with the CPU
// utilization metric last, and a v1 HPA without any metric gets upstream's
// default 80% CPU utilization target.
package convert
