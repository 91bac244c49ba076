package flysim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// crockford is the Crockford base32 alphabet ULIDs are written in.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulidSource makes ULIDs (48-bit millisecond time + 80 random bits, 26
// characters) that sort in the order they were made, even within one
// millisecond, so event ids and instance ids of one simulator are monotonic.
type ulidSource struct {
	mu     sync.Mutex
	lastMS int64
	hi     uint16 // top 16 of the 80 random bits
	lo     uint64 // low 64 of the 80 random bits
}

// New returns a ULID for time t.
func (u *ulidSource) New(t time.Time) string {
	ms := t.UnixMilli()
	u.mu.Lock()
	if ms <= u.lastMS {
		ms = u.lastMS
		u.lo++
		if u.lo == 0 {
			u.hi++
		}
	} else {
		u.lastMS = ms
		u.hi = uint16(rand.Uint32())
		u.lo = rand.Uint64() >> 1 // leave room to increment
	}
	hi := uint64(ms)<<16 | uint64(u.hi) // 64 bits: 48 of time, 16 of randomness
	lo := u.lo
	u.mu.Unlock()

	// The 128-bit value hi:lo is written as 26 base32 digits (130 bits, the
	// top two always zero).
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}

// newMachineID returns a 14-character lowercase hex id, the shape of Fly
// machine ids.
func newMachineID() string {
	var b [7]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

// newNonce returns a 12-character lowercase hex lease nonce.
func newNonce() string {
	var b [6]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return hex.EncodeToString(b[:])
}

var (
	nameAdjectives = []string{"aged", "bold", "calm", "dark", "eager", "fancy", "gentle", "hidden", "icy", "jolly",
		"kind", "lively", "misty", "noisy", "odd", "proud", "quiet", "rough", "shy", "tiny", "wild", "young"}
	nameNouns = []string{"thunder", "river", "forest", "meadow", "snow", "sun", "moon", "wind", "field", "cloud",
		"dawn", "lake", "night", "sky", "star", "wave", "frost", "leaf", "shadow", "flower"}
)

// newMachineName returns a generated name in Fly's style, e.g.
// "aged-thunder-7371".
func newMachineName() string {
	return nameAdjectives[rand.IntN(len(nameAdjectives))] + "-" +
		nameNouns[rand.IntN(len(nameNouns))] + "-" + strconv.Itoa(1000+rand.IntN(9000))
}

// usedBlocks records the 127.N.0.0/16 blocks taken by the simulators of this
// process, so that two simulators in one test binary never share addresses.
var usedBlocks = struct {
	sync.Mutex
	m map[byte]bool
}{m: map[byte]bool{}}

// blockSize is the number of addresses handed out per /16 block: third octet
// 0..254, fourth octet 1..254. 127.N.255.x is left out: 127.N.255.254 holds
// the block's marker.
const blockSize = 255 * 254

// blockMarkerPort is the port of the marker listener by which a simulator
// claims its 127.N.0.0/16 block against simulators of other processes: a
// second process fails to bind 127.N.255.254:blockMarkerPort and picks
// another block.
const blockMarkerPort = 42427

// ipAllocator hands out machine addresses from one 127.N.0.0/16 block. It is
// guarded by the simulator's mutex.
type ipAllocator struct {
	octet  byte // the second octet N
	next   int  // index of the next candidate address in the block
	inUse  map[netip.Addr]bool
	port   int          // the status port, used to test whether an address is free
	random bool         // the block was picked at random and must be returned on release
	marker net.Listener // claims the block across processes, when it could be bound
}

// newIPAllocator reserves a block. A zero base picks a random block (second
// octet 1..254, never 127.0.x.x where 127.0.0.1 and resolver stubs live)
// that no simulator of this process uses and no simulator of another
// process claimed with its marker, and a random starting point inside it.
// Should the marker port be unusable, the bind test in allocate still skips
// addresses another process listens on.
func newIPAllocator(base netip.Addr) (*ipAllocator, error) {
	a := &ipAllocator{inUse: map[netip.Addr]bool{}}
	if base.IsValid() {
		b := base.As4()
		if !base.Is4() || b[0] != 127 || b[2] == 255 {
			return nil, fmt.Errorf("ip base %s is not in 127.0.0.0/8 (outside 127.N.255.x)", base)
		}
		a.octet = b[1]
		a.next = int(b[2])*254 + max(int(b[3]), 1) - 1
		return a, nil
	}
	usedBlocks.Lock()
	defer usedBlocks.Unlock()
	if len(usedBlocks.m) >= 254 {
		return nil, errors.New("no free 127.N.0.0/16 block left in this process")
	}
	for tries := 0; ; tries++ {
		o := byte(1 + rand.IntN(254))
		if usedBlocks.m[o] {
			continue
		}
		ln, err := net.Listen("tcp", fmt.Sprintf("127.%d.255.254:%d", o, blockMarkerPort))
		if err != nil && errors.Is(err, syscall.EADDRINUSE) && tries < 64 {
			continue // another process's simulator owns this block
		}
		if err == nil {
			a.marker = ln
		}
		usedBlocks.m[o] = true
		a.octet = o
		a.random = true
		break
	}
	a.next = rand.IntN(200) * 254
	return a, nil
}

// close returns the block to the process-wide pool.
func (a *ipAllocator) close() {
	if a.marker != nil {
		_ = a.marker.Close()
	}
	if !a.random {
		return
	}
	usedBlocks.Lock()
	delete(usedBlocks.m, a.octet)
	usedBlocks.Unlock()
}

// addrAt returns the address of index i of the block (0 <= i < blockSize).
func (a *ipAllocator) addrAt(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, a.octet, byte(i / 254), byte(i%254 + 1)})
}

// first returns the first candidate address without taking it (used to pick
// the status port).
func (a *ipAllocator) first() netip.Addr { return a.addrAt(a.next % blockSize) }

// allocate takes the next free address. With test set, it also checks that
// nothing (another process's simulator) already listens on addr:port.
func (a *ipAllocator) allocate(test bool) (netip.Addr, error) {
	for tries := 0; tries < blockSize; tries++ {
		i := a.next % blockSize
		a.next = (i + 1) % blockSize
		addr := a.addrAt(i)
		if a.inUse[addr] || addr == netip.AddrFrom4([4]byte{127, 0, 0, 1}) {
			continue
		}
		if test && !addrFree(addr, a.port) {
			continue
		}
		a.inUse[addr] = true
		return addr, nil
	}
	return netip.Addr{}, fmt.Errorf("no free address left in 127.%d.0.0/16", a.octet)
}

// release gives an address back.
func (a *ipAllocator) release(addr netip.Addr) { delete(a.inUse, addr) }

// addrFree reports whether addr:port can be bound. Only "address in use"
// counts as taken; other errors surface later, when the machine's server
// binds for real.
func addrFree(addr netip.Addr, port int) bool {
	ln, err := net.Listen("tcp", netip.AddrPortFrom(addr, uint16(port)).String())
	if err != nil {
		return !errors.Is(err, syscall.EADDRINUSE)
	}
	_ = ln.Close()
	return true
}
