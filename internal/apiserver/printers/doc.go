// Package printers owns the server-side Table representation of every served
// kind: the columns `kubectl get` and `kubectl get -o wide` show, and the text
// of each cell. Upstream Kubernetes (pkg/printers/internalversion) is the
// specification; column names, order, types, priorities, descriptions and cell
// formatting match it so that kubectl prints exactly what a real cluster
// prints.
//
// The package is two pure functions:
//
//   - ColumnDefinitions(groupKind) returns the columns for a kind. Columns with
//     Priority 1 are the extra `-o wide` columns; kubectl hides them unless
//     asked, the server always sends them.
//   - Row(obj, now) renders one typed object (a pointer to a k8s.io/api type)
//     into cells, one per column of its kind, in column order.
//
// Rules a caller must keep:
//
//   - Row always renders the wide cells, as the upstream server does; the
//     client decides what to hide. The columns for obj's kind are
//     ColumnDefinitions(obj's GroupKind) and len(cells) equals their number.
//   - now is the reference time for every age and duration; nothing here reads
//     a clock, so tests and the API server decide what "now" is.
//   - Kinds without a dedicated printer (LimitRange, Role, ClusterRole,
//     Binding, anything unknown) get upstream's default table: Name and
//     Created At, the latter an RFC 3339 timestamp in UTC.
//   - Upstream prints internal types; this package prints the versioned types
//     and applies the little of the version conversion that changes a cell
//     (pod IP and cluster IP fields, Secret stringData, autoscaling/v1 HPA
//     metrics, events.k8s.io field names) so the result is the same.
//   - The one kind whose first column is not Name is Event (core and
//     events.k8s.io): upstream leads with Last Seen and puts Name last, as a
//     wide column.
//
// Cell values are strings, int64 or bool, the same Go types upstream puts in
// its cells, so the JSON a client receives is identical.
package printers
