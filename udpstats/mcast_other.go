//go:build !linux

package udpstats

import (
	"context"
	"net"
)

func openSender(string, int) (*net.UDPConn, error) { return nil, ErrUnsupported }

func openReceiver(context.Context, *net.UDPAddr, string, int) (*net.UDPConn, error) {
	return nil, ErrUnsupported
}
