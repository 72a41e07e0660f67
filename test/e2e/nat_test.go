package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// natInvite is u's INVITE for c as a phone behind NAT writes it: its Via,
// Contact and SDP name contact, an address the far end cannot reach; sdp
// replaces the SDP's address when not "".
func natInvite(u *uac, c *call, contact, sdp string) string {
	inv := u.invite(c)
	inv = strings.Replace(inv, "Via: SIP/2.0/UDP "+u.local, "Via: SIP/2.0/UDP "+contact, 1)
	inv = strings.Replace(inv, "Contact: <sip:"+c.from+"@"+u.local+">", "Contact: <sip:"+c.from+"@"+contact+">", 1)
	if sdp != "" {
		inv = withSDPAddr(inv, sdp)
	}
	return inv
}

// withSDPAddr returns the raw request inv with its SDP's addresses replaced
// by addr, and its Content-Length to match.
func withSDPAddr(inv, addr string) string {
	head, body, _ := strings.Cut(inv, "\r\n\r\n")
	body = strings.ReplaceAll(body, "IN IP4 127.0.0.1", "IN IP4 "+addr)
	head = strings.Replace(head, fmt.Sprintf("Content-Length: %d", len(testSDP)), fmt.Sprintf("Content-Length: %d", len(body)), 1)
	return head + "\r\n\r\n" + body
}

// TestNAT: an endpoint left to detection calls from behind NAT: the core
// gets its source address in the SDP and the decision says why; force_nat
// replaces even a public SDP address; disable_nat leaves the SDP as given and
// sends the core's BYE to the caller's Contact instead of its source; a
// phone registered from behind NAT answers a call with its private address
// and the core gets its public one.
func TestNAT(t *testing.T) {
	core := newRawUAS(t, "127.0.0.1", 200)
	n := start(t, "", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "dids": []map[string]any{{"number": "442071230001"}}}))
	for addr, flags := range map[string]map[string]any{"127.0.0.2": {}, "127.0.0.3": {"force_nat": true}, "127.0.0.4": {"disable_nat": true}} {
		body := map[string]any{"address": addr}
		for k, v := range flags {
			body[k] = v
		}
		n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/ip-endpoints", acc), body)
	}
	waitSnapshot(t, n)
	call := func(u *uac, c *call, inv string) string {
		t.Helper()
		before := len(core.requests(sip.INVITE))
		u.send(inv)
		_, res := u.final("INVITE", 5*time.Second)
		u.ack(c, res)
		if res.StatusCode != 200 {
			t.Fatalf("call from %s: %d %s", u.local, res.StatusCode, res.Reason)
		}
		return string(core.requests(sip.INVITE)[before].Body())
	}

	// Detection: Via and Contact in 192.168.1.0/24, SDP too.
	u := newUAC(t, "127.0.0.2", n.SIP)
	c := newCall("441234567890", "442071234567")
	if sdp := call(u, c, natInvite(u, c, "192.168.1.20:5060", "192.168.1.20")); !strings.Contains(sdp, "c=IN IP4 127.0.0.2\r\n") || strings.Contains(sdp, "c=IN IP4 192.168.1.20") {
		t.Errorf("behind NAT: the core got SDP\n%s\nwant c=IN IP4 127.0.0.2", sdp)
	}
	if d := n.decision(t, c.callID); !strings.Contains(fmt.Sprint(d["nat"]), "behind NAT (Via 192.168.1.20 is not the source 127.0.0.2)") ||
		!strings.Contains(fmt.Sprint(d["nat"]), "SDP address 192.168.1.20 replaced by 127.0.0.2") {
		t.Errorf("decision nat = %q", d["nat"])
	}
	u.bye(c)

	// force_nat: the SDP's public address (127.0.0.1 here) becomes the source.
	u = newUAC(t, "127.0.0.3", n.SIP)
	c = newCall("441234567890", "442071234567")
	if sdp := call(u, c, u.invite(c)); !strings.Contains(sdp, "c=IN IP4 127.0.0.3\r\n") {
		t.Errorf("force_nat: the core got SDP\n%s\nwant c=IN IP4 127.0.0.3", sdp)
	}
	u.bye(c)

	// A phone behind NAT, called: its answer's private address becomes its source.
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "2001"})
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/accounts/%d/dids/%d", acc, id(n.mustAPI(t, 200, "GET", fmt.Sprintf("/accounts/%d/dids", acc), nil)["items"].([]any)[0].(map[string]any))),
		map[string]any{"sip_user_id": id(user)})
	waitSnapshot(t, n)
	phone := newUAC(t, "127.0.0.6", n.SIP)
	cseq := 0
	if res := phone.register(t, "2001", user["password"].(string), "nat-reg", &cseq, []string{"<sip:2001@192.168.1.30:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER from behind NAT: %d", res.StatusCode)
	}
	coreSide := newUAC(t, "127.0.0.1", n.SIP)
	cc := newCall("441234567890", "442071230001")
	coreSide.send(coreSide.invite(cc))
	_, m := phone.recv(5 * time.Second)
	pinv, ok := m.(*sip.Request)
	if !ok || pinv.Method != sip.INVITE {
		t.Fatalf("the phone got %v, want the INVITE", m)
	}
	ans := sip.NewSDPResponseFromRequest(pinv, []byte(strings.ReplaceAll(testSDP, "127.0.0.1", "192.168.1.30")))
	ans.To().Params.Add("tag", "phone1")
	ans.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "2001", Host: "192.168.1.30", Port: 5060}})
	phone.send(ans.String())
	_, res := coreSide.final("INVITE", 5*time.Second)
	coreSide.ack(cc, res)
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "c=IN IP4 127.0.0.6\r\n") || strings.Contains(string(res.Body()), "c=IN IP4 192.168.1.30") {
		t.Errorf("the core got %d with SDP\n%s\nwant the phone's source 127.0.0.6", res.StatusCode, res.Body())
	}
	go func() {
		if _, m := phone.recv(5 * time.Second); m != nil {
			if bye, ok := m.(*sip.Request); ok {
				phone.answer(bye, 200)
			}
		}
	}()
	coreSide.bye(cc)

	// disable_nat: SDP as given; the core's BYE goes to the Contact, a
	// listener other than the caller's socket.
	contact, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.5")})
	if err != nil {
		t.Fatal(err)
	}
	defer contact.Close()
	u = newUAC(t, "127.0.0.4", n.SIP)
	c = newCall("441234567890", "442071234567")
	inv := strings.Replace(u.invite(c), "Contact: <sip:"+c.from+"@"+u.local+">", "Contact: <sip:"+c.from+"@"+contact.LocalAddr().String()+">", 1)
	inv = withSDPAddr(inv, "10.0.0.5")
	if sdp := call(u, c, inv); !strings.Contains(sdp, "c=IN IP4 10.0.0.5\r\n") {
		t.Errorf("disable_nat: the core got SDP\n%s\nwant it as given", sdp)
	}
	legB := core.requests(sip.INVITE)[len(core.requests(sip.INVITE))-1].CallID().Value()
	go core.send(legB, sip.BYE, "")
	contact.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 65535)
	k, _, err := contact.ReadFromUDP(buf)
	if err != nil || !strings.HasPrefix(string(buf[:k]), "BYE ") || !strings.Contains(string(buf[:k]), c.callID) {
		t.Fatalf("disable_nat: the caller's Contact got %q, %v; want the core's BYE", buf[:k], err)
	}
	if bye, err := sip.ParseMessage(append([]byte(nil), buf[:k]...)); err == nil {
		ok := sip.NewResponseFromRequest(bye.(*sip.Request), 200, "OK", nil)
		to, _ := net.ResolveUDPAddr("udp", n.SIP)
		contact.WriteToUDP([]byte(ok.String()), to)
	}
	n.waitIdle(t)
}
