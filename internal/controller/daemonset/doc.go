// Package daemonset is the daemonset controller: one pod of each DaemonSet
// on every node that should run it, as upstream does.
//
// Eligibility (ShouldRun) is a pure function of the node and the set:
// nodeSelector, required node affinity and taints against the template's
// tolerations plus the default daemon tolerations. The controller does not
// bind pods: each daemon pod requires its node through a matchFields
// metadata.name affinity term and the scheduler places it. Pods for nodes
// that are gone or no longer match are deleted.
//
// Each sync claims the set's pods, finds or creates the ControllerRevision
// of the template (package history; pods carry its hash in
// controller-revision-hash), asks the pure planner Decide what to create
// and delete (including RollingUpdate with maxUnavailable/maxSurge), acts
// under Expectations so a lagging cache cannot double-create, and writes
// status.
package daemonset
