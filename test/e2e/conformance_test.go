package e2e

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// conformanceCase is one row of testdata/conformance.tsv.
type conformanceCase struct {
	name, rfc, reason string
	want, stream      map[string]bool // allowed outcomes; stream: over TCP/TLS, when set
}

func loadConformance(t *testing.T) []conformanceCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "conformance.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	set := func(s string) map[string]bool {
		if s == "-" {
			return nil
		}
		m := map[string]bool{}
		for _, o := range strings.Split(s, "|") {
			m[o] = true
		}
		return m
	}
	var out []conformanceCase
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 5 {
			t.Fatalf("conformance.tsv:%d: %d fields, want 5", i+1, len(f))
		}
		out = append(out, conformanceCase{name: f[0], rfc: f[1], want: set(f[2]), stream: set(f[3]), reason: f[4]})
	}
	return out
}

// outcome of one message on one transport: a status code, or "drop".
func classify(status int) string {
	if status == 0 {
		return "drop"
	}
	return strconv.Itoa(status)
}

// allowed reports whether outcome meets want: "ok" is any final answer but 400.
func allowed(want map[string]bool, outcome string) bool {
	if want[outcome] {
		return true
	}
	return want["ok"] && outcome != "drop" && outcome != "400"
}

var statusRe = regexp.MustCompile(`^SIP/2\.0 (\d{3}) `)

// firstFinal reads what the edge sends on r until a final status line
// (200-699) or nothing more comes (0).
func firstFinal(r *bufio.Reader, c net.Conn, wait time.Duration) int {
	deadline := time.Now().Add(wait)
	for {
		_ = c.SetReadDeadline(deadline)
		line, err := r.ReadString('\n')
		if err != nil {
			return 0
		}
		if m := statusRe.FindStringSubmatch(line); m != nil {
			if st, _ := strconv.Atoi(m[1]); st >= 200 {
				return st
			}
		}
	}
}

// sendUDP sends msg as one datagram from a socket of its own and returns the
// first final status that comes back.
func sendUDP(t *testing.T, ip, addr string, msg []byte, wait time.Duration) int {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		t.Error(err)
		return -1
	}
	defer conn.Close()
	to, _ := net.ResolveUDPAddr("udp", addr)
	if _, err := conn.WriteToUDP(msg, to); err != nil {
		t.Error(err)
		return -1
	}
	buf := make([]byte, 65535)
	deadline := time.Now().Add(wait)
	for {
		_ = conn.SetReadDeadline(deadline)
		n, _, err := conn.ReadFromUDP(buf)
		if err != nil {
			return 0
		}
		if m := statusRe.FindSubmatch(buf[:n]); m != nil {
			if st, _ := strconv.Atoi(string(m[1])); st >= 200 {
				return st
			}
		}
	}
}

// sendStream sends msg on a connection of its own (TCP, or TLS when tlsConf
// is set) and returns the first final status that comes back (0: none, or
// the connection closed).
func sendStream(t *testing.T, ip, addr string, tlsConf *tls.Config, msg []byte, wait time.Duration) int {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if tlsConf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Error(err)
		return -1
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return 0
	}
	return firstFinal(bufio.NewReader(c), c, wait)
}

// TestConformance sends every RFC 4475 torture message over UDP, TCP and
// TLS on IPv4, every RFC 5118 message over the three on IPv6 ([::1]), and
// sipward's own tolerance messages (testdata/tolerance: bare LF line ends)
// over the three on IPv4, each from a stranger's address, and checks each
// answer against testdata/conformance.tsv: a valid message is processed
// normally (never 400), an invalid one gets 400 or nothing (never a 2xx),
// and the same request gets the same answer over every transport.
//
// Each transport has a node of its own: the torture messages reuse their
// branches, and RFC 3261 §17.2.3 matches a transaction by branch, sent-by
// and method, not by transport, so a second node would take the same
// message over TCP after UDP as a retransmission (answered where the first
// was). Real clients make a branch per transaction.
func TestConformance(t *testing.T) {
	v4 := conformanceNodes(t, "127.0.0.1")
	v6 := conformanceNodes(t, "[::1]")
	tlsConf := &tls.Config{InsecureSkipVerify: true} // the test's self-signed certificate
	cases := loadConformance(t)
	const wait = 1500 * time.Millisecond

	type result struct {
		name     string
		outcomes [3]string // udp, tcp, tls
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, tc := range cases {
		dir := conformanceDir(tc.rfc)
		msg, err := os.ReadFile(filepath.Join(dir, tc.name+".sip"))
		if err != nil {
			t.Fatal(err)
		}
		ip, to := fmt.Sprintf("127.0.%d.%d", 20+i/200, 1+i%200), v4 // a stranger per message
		if dir == rfc5118Dir {
			ip, to = "::1", v6
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			send := func(j int, m []byte, wait time.Duration) string {
				if j == 0 {
					return classify(sendUDP(t, ip, to[0], m, wait))
				}
				var c *tls.Config
				if j == 2 {
					c = tlsConf
				}
				return classify(sendStream(t, ip, to[j], c, m, wait))
			}
			res := result{name: tc.name}
			for j := range res.outcomes {
				res.outcomes[j] = send(j, msg, wait)
				want := tc.want
				if j > 0 && tc.stream != nil {
					want = tc.stream
				}
				if !allowed(want, res.outcomes[j]) && res.outcomes[j] == "drop" {
					// Not answered in time: on a loaded machine the answer
					// may come late. Once more, given longer, as a new
					// transaction (else it is a retransmission of the first,
					// answered to the first's connection).
					res.outcomes[j] = send(j, bytes.Replace(msg, []byte("branch=z9hG4bK"), []byte("branch=z9hG4bKretry"), 1), 8*wait)
				}
			}
			results[i] = res
		}()
	}
	wg.Wait()
	var table strings.Builder
	for i, tc := range cases {
		r := results[i]
		fmt.Fprintf(&table, "%-11s %-14s udp %-5s tcp %-5s tls %-5s\n", tc.name, tc.rfc, r.outcomes[0], r.outcomes[1], r.outcomes[2])
		for j, tr := range []string{"udp", "tcp", "tls"} {
			want := tc.want
			if j > 0 && tc.stream != nil {
				want = tc.stream
			}
			if !allowed(want, r.outcomes[j]) {
				t.Errorf("%s (RFC %s) over %s: %s; want %s (%s)", tc.name, tc.rfc, tr, r.outcomes[j], keys(want), tc.reason)
			}
		}
		if tc.stream == nil && (r.outcomes[0] != r.outcomes[1] || r.outcomes[1] != r.outcomes[2]) {
			t.Errorf("%s: udp %s, tcp %s, tls %s: the same request must get the same answer over every transport",
				tc.name, r.outcomes[0], r.outcomes[1], r.outcomes[2])
		}
	}
	t.Logf("outcomes:\n%s", table.String())
	for _, dir := range []string{rfc4475Dir, rfc5118Dir, toleranceDir} {
		onDisk, _ := filepath.Glob(filepath.Join(dir, "*.sip"))
		rows := 0
		for _, tc := range cases {
			if conformanceDir(tc.rfc) == dir {
				rows++
			}
		}
		if len(onDisk) != rows {
			t.Errorf("%d messages in %s, %d rows for them in conformance.tsv", len(onDisk), dir, rows)
		}
	}
}

var (
	rfc4475Dir   = filepath.Join("..", "..", "internal", "stage", "sanity", "testdata", "rfc4475")
	rfc5118Dir   = filepath.Join("testdata", "rfc5118")
	toleranceDir = filepath.Join("testdata", "tolerance")
)

// conformanceDir is where a row's message is, by its rfc column.
func conformanceDir(rfc string) string {
	switch {
	case strings.HasPrefix(rfc, "4475 "):
		return rfc4475Dir
	case strings.HasPrefix(rfc, "5118 "):
		return rfc5118Dir
	}
	return toleranceDir
}

// conformanceNodes starts a node per transport listening on host (UDP and
// TCP on one, TLS on another), and returns the address each is tested on:
// the first node's UDP, the second's TCP, the third's TLS.
func conformanceNodes(t *testing.T, host string) [3]string {
	t.Helper()
	cert, key := selfSigned(t)
	args := []string{"--sip-addr", host + ":0", "--tls-cert", cert, "--tls-key", key, "--sips-addr", host + ":0", "--fraud-threshold", "-1"}
	nodes := [3]*node{start(t, "", args...), start(t, "", args...), start(t, "", args...)}
	m := sipsRe.FindStringSubmatch(nodes[2].Log())
	if m == nil {
		t.Fatalf("no TLS listener:\n%s", nodes[2].Log())
	}
	return [3]string{nodes[0].SIP, nodes[1].SIP, m[1]}
}

func keys(m map[string]bool) string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return strings.Join(out, "|")
}
