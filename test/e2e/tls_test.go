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
