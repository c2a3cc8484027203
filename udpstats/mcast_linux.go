package udpstats

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// openSender makes a UDP socket that sends to group on ifaceName only:
// IP_MULTICAST_IF pins the interface (without it the kernel would follow the
// routing table, usually to the default route), IP_MULTICAST_TTL bounds how
// far datagrams go and IP_MULTICAST_LOOP lets a monitor on the same host
// (and tests on lo) see them.
func openSender(ifaceName string, ttl int) (*net.UDPConn, error) {
	ifi, err := net.InterfaceByName(ifaceName)
	if err != nil {
		return nil, fmt.Errorf("udpstats: interface %q: %w", ifaceName, err)
	}
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, fmt.Errorf("udpstats: open sender: %w", err)
	}
	err = control(c, func(fd int) error {
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_IF,
			&unix.IPMreqn{Ifindex: int32(ifi.Index)}); err != nil {
			return fmt.Errorf("IP_MULTICAST_IF %s: %w", ifaceName, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_TTL, ttl); err != nil {
			return fmt.Errorf("IP_MULTICAST_TTL %d: %w", ttl, err)
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_LOOP, 1); err != nil {
			return fmt.Errorf("IP_MULTICAST_LOOP: %w", err)
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("udpstats: open sender: %w", err)
	}
	return c, nil
}

// openReceiver binds group's port on the group address itself (so unicast
// and other groups on the same port are not received) with SO_REUSEADDR and
// SO_REUSEPORT, so that several monitors and tests on one host share the
// port, and joins the group on ifaceName.
func openReceiver(ctx context.Context, group *net.UDPAddr, ifaceName string, readBuffer int) (*net.UDPConn, error) {
	ifi, err := net.InterfaceByName(ifaceName)
	if err != nil {
		return nil, fmt.Errorf("udpstats: interface %q: %w", ifaceName, err)
	}
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); serr != nil {
				return
			}
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", group.String())
	if err != nil {
		return nil, fmt.Errorf("udpstats: listen %s: %w", group, err)
	}
	c := pc.(*net.UDPConn)
	if readBuffer > 0 {
		_ = c.SetReadBuffer(readBuffer) // best effort: capped by net.core.rmem_max
	}
	err = control(c, func(fd int) error {
		var g [4]byte
		copy(g[:], group.IP.To4())
		if err := unix.SetsockoptIPMreqn(fd, unix.IPPROTO_IP, unix.IP_ADD_MEMBERSHIP,
			&unix.IPMreqn{Multiaddr: g, Ifindex: int32(ifi.Index)}); err != nil {
			return fmt.Errorf("IP_ADD_MEMBERSHIP %s on %s: %w", group.IP, ifaceName, err)
		}
		// Linux delivers datagrams of every group any socket on the host
		// joined to a socket bound to the same port unless this is off.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_MULTICAST_ALL, 0); err != nil {
			return fmt.Errorf("IP_MULTICAST_ALL: %w", err)
		}
		return nil
	})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("udpstats: join: %w", err)
	}
	return c, nil
}

func control(c *net.UDPConn, f func(fd int) error) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = f(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
