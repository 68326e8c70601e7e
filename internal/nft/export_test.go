package nft

import (
	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
)

// WithTestDial hands every netlink request to f instead of the kernel.
func WithTestDial(f func([]netlink.Message) ([]netlink.Message, error)) Option {
	return func(c *Conn) {
		c.opts = append(c.opts, nftables.WithTestDial(f))
		c.test = true
	}
}
