package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sipward e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return certFile, keyFile
}

func sipParse(s string) (*sip.Response, error) {
	m, err := sip.ParseMessage([]byte(s))
	if err != nil {
		return nil, err
	}
	r, ok := m.(*sip.Response)
	if !ok {
		return nil, fmt.Errorf("not a response")
	}
	return r, nil
}

var sipsRe = regexp.MustCompile(`msg="sip edge listening" .*tls=(\S+)`)

// TestTLSListener: with --tls-cert/--tls-key sipward answers SIP over TLS,
// and a TLS-only endpoint is refused over UDP but accepted over TLS.
func TestTLSListener(t *testing.T) {
	cert, key := selfSigned(t)
	core := newUAS(t, "127.0.0.1")
	// No --core-addr here: 127.0.0.1 is the customer's TLS switch in this test.
	n := start(t, "", "--upstream", "sip:"+core.addr, "--tls-cert", cert, "--tls-key", key, "--sips-addr", "127.0.0.1:0")
	m := sipsRe.FindStringSubmatch(n.Log())
	if m == nil || m[1] == `""` {
		t.Fatalf("no TLS listener in the log:\n%s", n.Log())
	}
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), map[string]any{"address": "127.0.0.1", "protocol": "tls"})
	waitSnapshot(t, n)

	conn, err := tls.Dial("tcp", m[1], &tls.Config{InsecureSkipVerify: true}) // self-signed test certificate
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	inv := fmt.Sprintf("INVITE sip:442071234567@%s;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:441234567890@127.0.0.1>;tag=t1\r\nTo: <sip:442071234567@%s>\r\nCall-ID: tls-%s\r\nCSeq: 1 INVITE\r\nContact: <sips:x@%s>\r\nContent-Type: application/sdp\r\nContent-Length: %d\r\n\r\n%s",
		m[1], local, branch(), m[1], branch(), local, len(testSDP), testSDP)
	if _, err := conn.Write([]byte(inv)); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	var got strings.Builder
	for !strings.Contains(got.String(), "SIP/2.0 200") {
		k, err := conn.Read(buf)
		if err != nil {
			_, d := n.api(t, "GET", "/decisions", nil)
			t.Fatalf("reading answers over TLS: %v; got so far:\n%s\ndecisions: %v", err, got.String(), d)
		}
		got.Write(buf[:k])
	}
	res, err := sipParse(got.String()[strings.Index(got.String(), "SIP/2.0 200"):])
	if err != nil {
		t.Fatal(err)
	}
	toTag, _ := res.To().Params.Get("tag")
	callID := res.CallID().Value()
	for i, m := range []string{"ACK", "BYE"} {
		fmt.Fprintf(conn, "%s %s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sip:441234567890@127.0.0.1>;tag=t1\r\nTo: <sip:442071234567@%s>;tag=%s\r\nCall-ID: %s\r\nCSeq: %d %s\r\nContent-Length: 0\r\n\r\n",
			m, res.Contact().Address.String(), local, branch(), n.SIP, toTag, callID, 1+i, m)
	}
	got.Reset()
	for !strings.Contains(got.String(), "BYE") {
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("no answer to BYE over TLS: %v\n%s", err, got.String())
		}
		got.Write(buf[:k])
	}
	n.waitIdle(t)
	// The same endpoint over UDP is refused: it is pinned to TLS.
	if st, reason := placeCall(t, n, "127.0.0.1", "441234567890", "442071234567"); st != 403 || reason != "Transport not allowed" {
		t.Errorf("TLS-only endpoint over UDP: %d %q, want 403 \"Transport not allowed\"", st, reason)
	}
}

// TestSIPUserProtocol: a SIP user set to protocol tls registers over TLS; over
// UDP its REGISTER and its INVITE are refused, right password or not, with
// 403 "Transport not allowed" and the reason in the decision.
func TestSIPUserProtocol(t *testing.T) {
	cert, key := selfSigned(t)
	core := newUAS(t, "127.0.0.1")
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32",
		"--tls-cert", cert, "--tls-key", key, "--sips-addr", "127.0.0.1:0")
	m := sipsRe.FindStringSubmatch(n.Log())
	if m == nil || m[1] == `""` {
		t.Fatalf("no TLS listener in the log:\n%s", n.Log())
	}
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme"}))
	pw := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "3001", "protocol": "tls"})["password"].(string)
	waitSnapshot(t, n)

	// Over UDP: refused after the right answer to the challenge.
	u := newUAC(t, "127.0.0.8", n.SIP)
	cseq := 0
	if res := u.register(t, "3001", pw, "proto-udp", &cseq, []string{"<sip:3001@10.0.0.5:5060>"}, "300"); res.StatusCode != 403 || res.Reason != "Transport not allowed" {
		t.Errorf("REGISTER over UDP of a tls user: %d %q, want 403 \"Transport not allowed\"", res.StatusCode, res.Reason)
	}
	c := newCall("3001", "442071234567")
	u.send(u.invite(c))
	_, ch := u.final("INVITE", 5*time.Second)
	u.ack(c, ch)
	if ch.StatusCode != 407 {
		t.Fatalf("first INVITE: %d, want 407", ch.StatusCode)
	}
	u.send(u.invite(c, "Proxy-Authorization: "+digestAuth(ch, "3001", pw, "INVITE", "sip:442071234567@"+n.SIP, 1)))
	_, res := u.final("INVITE", 5*time.Second)
	u.ack(c, res)
	if res.StatusCode != 403 || res.Reason != "Transport not allowed" {
		t.Errorf("INVITE over UDP of a tls user: %d %q, want 403 \"Transport not allowed\"", res.StatusCode, res.Reason)
	}
	if d := n.decisionWith(t, c.callID, 403); !strings.Contains(fmt.Sprint(d["why"]), `sip user "3001" requires tls; the request came over udp`) {
		t.Errorf("decision of the refused INVITE: %v", d)
	}
	if len(core.got()) != 0 {
		t.Errorf("the core got %d INVITEs, want none", len(core.got()))
	}

	// Over TLS: challenged, then registered.
	conn, err := tls.Dial("tcp", m[1], &tls.Config{InsecureSkipVerify: true}) // self-signed test certificate
	if err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	register := func(n int, auth string) *sip.Response {
		t.Helper()
		if auth != "" {
			auth = "Authorization: " + auth + "\r\n"
		}
		fmt.Fprintf(conn, "REGISTER sips:%s SIP/2.0\r\nVia: SIP/2.0/TLS %s;branch=%s\r\nMax-Forwards: 70\r\nFrom: <sips:3001@%s>;tag=p%d\r\nTo: <sips:3001@%s>\r\nCall-ID: proto-tls\r\nCSeq: %d REGISTER\r\nContact: <sips:3001@%s>\r\nExpires: 300\r\n%sContent-Length: 0\r\n\r\n",
			m[1], local, branch(), m[1], n, m[1], n, local, auth)
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 65535)
		k, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("REGISTER %d over TLS: no answer: %v", n, err)
		}
		res, err := sipParse(string(buf[:k]))
		if err != nil {
			t.Fatalf("REGISTER %d over TLS: %v\n%s", n, err, buf[:k])
		}
		return res
	}
	ch = register(1, "")
	if ch.StatusCode != 401 {
		t.Fatalf("REGISTER over TLS without credentials: %d, want 401", ch.StatusCode)
	}
	if res := register(2, digestAuth(ch, "3001", pw, "REGISTER", "sips:"+m[1], 1)); res.StatusCode != 200 {
		t.Errorf("REGISTER over TLS of a tls user: %d %s, want 200", res.StatusCode, res.Reason)
	}
}
