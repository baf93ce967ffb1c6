package nodeipam

import (
	"errors"
	"fmt"
	"math/big"
	"net"
)

// ErrFull means every subnet of the cluster CIDR is taken.
var ErrFull = errors.New("cidr set: no subnet left")

// CIDRSet hands out fixed-size subnets of a cluster CIDR. It does no I/O
// and is not safe for concurrent use.
type CIDRSet struct {
	base    *big.Int
	bits    int // address length: 32 or 128
	mask    int // subnet prefix length
	max     int
	used    []bool
	next    int
	inUse   int
	cluster *net.IPNet
}

// NewCIDRSet returns the set of /mask subnets of cluster.
func NewCIDRSet(cluster *net.IPNet, mask int) (*CIDRSet, error) {
	ones, bits := cluster.Mask.Size()
	if mask < ones || mask > bits {
		return nil, fmt.Errorf("node CIDR mask size %d must be between %d and %d", mask, ones, bits)
	}
	if mask-ones > 24 {
		return nil, fmt.Errorf("node CIDR mask size %d splits %s into too many subnets", mask, cluster)
	}
	return &CIDRSet{
		base: new(big.Int).SetBytes(cluster.IP.Mask(cluster.Mask).To16()[16-bits/8:]),
		bits: bits, mask: mask, max: 1 << (mask - ones), used: make([]bool, 1<<(mask-ones)), cluster: cluster,
	}, nil
}

func (s *CIDRSet) subnet(i int) *net.IPNet {
	off := new(big.Int).Lsh(big.NewInt(int64(i)), uint(s.bits-s.mask))
	ip := new(big.Int).Add(s.base, off).Bytes()
	b := make([]byte, s.bits/8)
	copy(b[len(b)-len(ip):], ip)
	return &net.IPNet{IP: net.IP(b), Mask: net.CIDRMask(s.mask, s.bits)}
}

// index returns the subnet index of cidr, or false when it is not one of
// the set's subnets.
func (s *CIDRSet) index(cidr *net.IPNet) (int, bool) {
	ones, bits := cidr.Mask.Size()
	if bits != s.bits || ones != s.mask || !s.cluster.Contains(cidr.IP) {
		return 0, false
	}
	ip := cidr.IP.To16()[16-bits/8:]
	v := new(big.Int).Sub(new(big.Int).SetBytes(ip), s.base)
	v.Rsh(v, uint(s.bits-s.mask))
	return int(v.Int64()), true
}

// Allocate returns the next free subnet.
func (s *CIDRSet) Allocate() (*net.IPNet, error) {
	for n := 0; n < s.max; n++ {
		i := (s.next + n) % s.max
		if !s.used[i] {
			s.used[i] = true
			s.inUse++
			s.next = (i + 1) % s.max
			return s.subnet(i), nil
		}
	}
	return nil, ErrFull
}

// Occupy marks cidr as taken (a node already has it).
func (s *CIDRSet) Occupy(cidr *net.IPNet) error {
	i, ok := s.index(cidr)
	if !ok {
		return fmt.Errorf("%s is not a /%d subnet of %s", cidr, s.mask, s.cluster)
	}
	if !s.used[i] {
		s.used[i] = true
		s.inUse++
	}
	return nil
}

// Release frees cidr.
func (s *CIDRSet) Release(cidr *net.IPNet) {
	if i, ok := s.index(cidr); ok && s.used[i] {
		s.used[i] = false
		s.inUse--
	}
}

// InUse is the number of subnets taken.
func (s *CIDRSet) InUse() int { return s.inUse }
