// Package rtnl is the small rtnetlink layer the node's network components
// share: a connection to one network namespace, the encoding of
// attributes and of struct ifinfomsg and ifaddrmsg, links (looked up by
// name or index, deleted, brought up), IPv4 addresses (listed, added and
// deleted with a prefix length), and the device that holds local
// addresses for the userspace proxy and the load balancer announcer
// (EnsureAddressDevice). Messages are built here over
// github.com/mdlayher/netlink and golang.org/x/sys/unix's constants rather
// than through a netlink library of wider scope.
//
// It is a shared leaf in the architecture's sense: it imports no
// component, and components (internal/nodenet, internal/proxy/userspace,
// internal/announce) import it. Messages only one component sends (routes,
// neighbours and forwarding entries, the VXLAN device) stay in that
// component, built with Conn.Execute, Attrs and IfInfomsg; what a second
// component needs moves here instead of being copied.
//
// Lifecycle: Dial opens a Conn in a network namespace (an open namespace
// file descriptor, or 0 for the caller's); every method sends a request
// and waits for its answer; Close ends it. A Conn is safe for concurrent
// use, as the underlying netlink.Conn is: requests are serialised.
//
// The rules, kept by callers and by this package:
//
//   - The namespace file descriptor given to Dial must stay open for as
//     long as Dial runs; the Conn belongs to the namespace afterwards.
//   - Deletions are idempotent: deleting a link or an address that is not
//     there is no error. Additions of an address replace the one there.
//   - Only IPv4 addresses are listed, added and deleted.
//   - EnsureAddressDevice only creates and finds a device: the caller owns
//     the addresses on it and decides when to delete it (DeleteLink).
package rtnl
