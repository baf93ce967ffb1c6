// Package pki owns the cluster's certificate authority, the API server's
// serving certificate, client certificates, admin kubeconfig files and the
// join token.
//
// # Lifecycle
//
// The server calls Ensure on every start with the directory that holds its
// TLS material (normally <data-dir>/server/tls) and the addresses the API
// server answers on. On the first start Ensure creates everything; on later
// starts it loads what is there, so certificates handed out earlier (admin
// kubeconfigs, node client certificates) keep working. Ensure re-issues a
// leaf certificate, never the CA, when the leaf:
//
//   - is missing, unreadable, or does not match its key,
//   - was not signed by the current CA,
//   - is not yet valid or has less than 90 days left,
//   - (serving certificate) no longer covers the requested IPs and DNS names.
//
// The CA is created only when ca.crt is absent. A ca.crt without ca.key is
// an error rather than a reason to create a new CA: replacing a CA that other
// machines trust would silently lock every existing client out. A ca.key
// without ca.crt is what an interrupted first start leaves behind (the key is
// written first), so in that case a fresh CA is created.
//
// # Files
//
// Inside the directory (mode 0700):
//
//	ca.crt, ca.key                     the cluster CA (10 years)
//	serving.crt, serving.key           the API server's serving certificate (1 year)
//	client-<name>.crt, client-<name>.key client certificates from EnsureClientCert (1 year)
//
// Keys are ECDSA P-256 in SEC 1 ("EC PRIVATE KEY") PEM, mode 0600. Loading
// also accepts PKCS #8 and PKCS #1 keys, so an operator may drop in their own
// CA. Every file is written to a temporary file in the same directory and
// renamed into place, so a crash never leaves a half-written file.
//
// # Rules for callers
//
// A Bundle is immutable after Ensure returns except for the files written by
// EnsureClientCert, which serialises itself; all methods are safe for
// concurrent use. The package does not watch expiry while the server runs: a
// server that runs for more than nine months without a restart must call
// Ensure again to renew its serving certificate.
package pki
