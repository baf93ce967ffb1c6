package framework

import (
	"errors"
	"fmt"
	"net"
)

// Ports are the loopback ports one cluster listens on.
type Ports struct {
	// Secure is the API server's HTTPS port (--secure-port).
	Secure int
	// EtcdClient is the embedded etcd's client port (--etcd-client-port).
	EtcdClient int
	// EtcdPeer is the embedded etcd's peer port (--etcd-peer-port).
	EtcdPeer int
}

// freePorts asks the kernel for three distinct free loopback ports. They are
// free when this returns, not reserved: another process may take one before
// the server binds it, which Start detects and answers with fresh ports.
func freePorts() (Ports, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	var got []int
	for range 3 {
		// All three stay open until the end so the kernel cannot hand out
		// the same port twice.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return Ports{}, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		addr, ok := l.Addr().(*net.TCPAddr)
		if !ok {
			return Ports{}, errors.New("find a free port: listener has no TCP address")
		}
		got = append(got, addr.Port)
	}
	return Ports{Secure: got[0], EtcdClient: got[1], EtcdPeer: got[2]}, nil
}
