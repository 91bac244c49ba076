package probe_test

import (
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// nxDomainServer is a loopback DNS server that answers every query NXDOMAIN, so that DNS failures are
// tested offline and fast, through the real resolver code.
type nxDomainServer struct {
	conn    net.PacketConn
	queries atomic.Int64
}

// startNXDomainServer starts the server; it stops when the spec ends.
func startNXDomainServer() *nxDomainServer {
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &nxDomainServer{conn: conn}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := conn.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply := nxDomainReply(buf[:n]); reply != nil {
				s.queries.Add(1)
				_, _ = conn.WriteTo(reply, from)
			}
		}
	}()
	DeferCleanup(func() {
		_ = conn.Close()
		<-done
	})
	return s
}

// resolver returns a pure-Go resolver that sends every query to the server.
func (s *nxDomainServer) resolver() *net.Resolver {
	addr := s.conn.LocalAddr().String()
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "udp", addr)
		},
	}
}

// nxDomainReply answers a query with its header and question and RCODE 3 (name error), or nil when the
// packet is not a query.
func nxDomainReply(q []byte) []byte {
	if len(q) < 12 || binary.BigEndian.Uint16(q[4:6]) != 1 {
		return nil
	}
	end := 12
	for end < len(q) && q[end] != 0 {
		end += int(q[end]) + 1
	}
	end += 5 // the root label, QTYPE and QCLASS
	if end > len(q) {
		return nil
	}
	reply := make([]byte, end)
	copy(reply, q[:end])
	flags := binary.BigEndian.Uint16(q[2:4])
	flags = 0x8000 | (flags & 0x7900) | 0x0080 | 3 // QR, opcode and RD kept, RA, NXDOMAIN
	binary.BigEndian.PutUint16(reply[2:4], flags)
	binary.BigEndian.PutUint16(reply[6:8], 0)   // ANCOUNT
	binary.BigEndian.PutUint16(reply[8:10], 0)  // NSCOUNT
	binary.BigEndian.PutUint16(reply[10:12], 0) // ARCOUNT
	return reply
}
