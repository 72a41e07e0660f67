package e2e

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
)

// recvFrom returns the next SIP message u gets and who sent it, or nil on
// timeout.
func recvFrom(t *testing.T, u *uac, timeout time.Duration) (sip.Message, *net.UDPAddr) {
	t.Helper()
	buf := make([]byte, 65535)
	u.conn.SetReadDeadline(time.Now().Add(timeout))
	n, from, err := u.conn.ReadFromUDP(buf)
	if err != nil {
		return nil, nil
	}
	m, err := sip.ParseMessage(buf[:n])
	if err != nil {
		t.Fatalf("unparseable message: %v\n%s", err, buf[:n])
	}
	return m, from
}

// ringPhone sends the core's INVITE for did through node n and returns the
// INVITE the phone got and where it came from; the phone answers 486 so
// the call ends there.
func ringPhone(t *testing.T, n *node, phone *uac, did string) (*sip.Request, *net.UDPAddr) {
	t.Helper()
	core := newUAC(t, "127.0.0.1", n.SIP)
	c := newCall("441234567890", did)
	core.send(core.invite(c))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		m, from := recvFrom(t, phone, time.Until(deadline))
		if inv, ok := m.(*sip.Request); ok && inv.Method == sip.INVITE {
			// The answer goes back where the INVITE came from.
			phone.conn.WriteToUDP([]byte(sip.NewResponseFromRequest(inv, 486, "Busy Here", nil).String()), from)
			if _, res := core.finalOrNothing("INVITE", 5*time.Second); res == nil || res.StatusCode != 486 {
				t.Errorf("the core got %v, want the phone's 486 (the phone got the INVITE from %s)", res, from)
			}
			return inv, from
		}
	}
	t.Fatalf("the phone got no INVITE for %s through %s", did, n.SIP)
	return nil, nil
}

// TestClusterLocation: two nodes sharing a store and Redis. Phones register
// through node A; calls from the core entering node B reach them: the one
// not NAT-ed directly, the NAT-ed one through A (it sees the INVITE come
// from A's SIP address). With A killed, B still calls the phone not NAT-ed
// directly, and answers a call for the NAT-ed one 480 naming A as gone.
func TestClusterLocation(t *testing.T) {
	ns := clusterNodes(t, 2, testRedis(t), "--core-addr", "127.0.0.1/32")
	a, b := ns[0], ns[1]
	acc := id(a.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme",
		"dids": []map[string]any{{"number": "442071230001"}, {"number": "442071230002"}}}))
	dids := a.mustAPI(t, 200, "GET", fmt.Sprintf("/accounts/%d/dids", acc), nil)["items"].([]any)
	pass, uid := map[string]string{}, map[string]int64{}
	for i, user := range []string{"2001", "2002"} {
		u := a.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": user})
		pass[user], uid[user] = u["password"].(string), id(u)
		a.mustAPI(t, 200, "PATCH", fmt.Sprintf("/accounts/%d/dids/%d", acc, id(dids[i].(map[string]any))), map[string]any{"sip_user_id": id(u)})
	}
	waitSnapshot(t, a)
	waitSnapshot(t, b)

	// 2001 registers from behind NAT (its Contact names a private address),
	// 2002 from its own address; both through A.
	natPhone, pubPhone := newUAC(t, "127.0.0.6", a.SIP), newUAC(t, "127.0.0.7", a.SIP)
	cseq := 0
	if res := natPhone.register(t, "2001", pass["2001"], "loc-nat", &cseq, []string{"<sip:2001@192.168.1.30:5060>"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER 2001 through A: %d", res.StatusCode)
	}
	cseq = 0
	if res := pubPhone.register(t, "2002", pass["2002"], "loc-pub", &cseq, []string{"<sip:2002@" + pubPhone.local + ">"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER 2002 through A: %d", res.StatusCode)
	}
	// B lists both, each on A's node.
	var nodeA string
	waitFor(t, "node B to list the bindings made through A", func() bool {
		_, m := b.api(t, "GET", "/registrations", nil)
		items, _ := m["items"].([]any)
		if len(items) != 2 {
			return false
		}
		nodeA, _ = items[0].(map[string]any)["node"].(string)
		return nodeA != "" && items[1].(map[string]any)["node"] == nodeA
	})

	// (a) Calls entering B.
	if _, from := ringPhone(t, b, pubPhone, "442071230002"); from.String() != b.SIP {
		t.Errorf("the phone not NAT-ed got the INVITE from %s, want directly from node B %s", from, b.SIP)
	}
	inv, from := ringPhone(t, b, natPhone, "442071230001")
	if from.String() != a.SIP {
		t.Errorf("the NAT-ed phone got the INVITE from %s, want through node A %s", from, a.SIP)
	}
	if inv.GetHeader("X-Sipward-Deliver") != nil {
		t.Errorf("the delivery header reached the phone:\n%s", inv)
	}

	// A MESSAGE asked of node B reaches the NAT-ed phone through A.
	type answer struct {
		st int
		m  map[string]any
	}
	done := make(chan answer, 1)
	go func() {
		st, m := b.api(t, "POST", fmt.Sprintf("/sip-users/%d/messages", uid["2001"]), map[string]any{"text": "across nodes"})
		done <- answer{st, m}
	}()
	var req *sip.Request
	for deadline := time.Now().Add(5 * time.Second); req == nil && time.Now().Before(deadline); {
		m, f := recvFrom(t, natPhone, time.Until(deadline))
		if r, ok := m.(*sip.Request); ok && r.Method == sip.MESSAGE { // not the ACK of the 486 before
			req, from = r, f
		}
	}
	if req == nil || string(req.Body()) != "across nodes" {
		t.Fatalf("the NAT-ed phone got %v, want the MESSAGE asked of node B", req)
	}
	if from.String() != a.SIP {
		t.Errorf("the MESSAGE came from %s, want through node A %s", from, a.SIP)
	}
	natPhone.conn.WriteToUDP([]byte(sip.NewResponseFromRequest(req, 200, "OK", nil).String()), from)
	if r := <-done; r.st != 200 || fmt.Sprint(r.m["devices"]) == "[]" || !strings.Contains(fmt.Sprint(r.m["devices"]), nodeA) {
		t.Errorf("node B's answer to the MESSAGE: %d %v, want the device on node %s", r.st, r.m, nodeA)
	}

	// (b) A killed: B lists it down once its heartbeat is 15 s old.
	a.cmd.Process.Kill()
	<-a.exited
	waitNodeDown(t, b, 30*time.Second)
	if _, from := ringPhone(t, b, pubPhone, "442071230002"); from.String() != b.SIP {
		t.Errorf("with A gone, the phone not NAT-ed got the INVITE from %s, want directly from B %s", from, b.SIP)
	}
	core := newUAC(t, "127.0.0.1", b.SIP)
	c := newCall("441234567890", "442071230001")
	core.send(core.invite(c))
	if _, res := core.final("INVITE", 5*time.Second); res.StatusCode != 480 {
		t.Errorf("a call for the NAT-ed phone of gone node A: %d %s, want 480", res.StatusCode, res.Reason)
	}
	if d := b.decisionWith(t, c.callID, 480); !strings.Contains(fmt.Sprint(d["why"]), "through node "+nodeA+", which is gone") {
		t.Errorf("decision why = %q, want it to name node %s as gone", d["why"], nodeA)
	}
}

// waitNodeDown waits until n lists a node other than itself as down.
func waitNodeDown(t *testing.T, n *node, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); ; time.Sleep(250 * time.Millisecond) {
		_, m := n.api(t, "GET", "/nodes", nil)
		items, _ := m["items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["status"] == "down" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no node listed down by %s within %v: %v", n.SIP, within, m)
		}
	}
}

// TestMessageWaitingAcrossNodes: two nodes sharing a store and Redis. A
// phone subscribes to its mailbox through node A; a message left through
// node B is told to it by A (the node its subscription lives on).
func TestMessageWaitingAcrossNodes(t *testing.T) {
	ns := clusterNodes(t, 2, testRedis(t), "--core-addr", "127.0.0.1/32")
	a, b := ns[0], ns[1]
	f := newVMFixture(t, a)
	waitSnapshot(t, b)
	waitFor(t, "node A to list node B up", func() bool {
		_, m := a.api(t, "GET", "/nodes", nil)
		items, _ := m["items"].([]any)
		up := 0
		for _, it := range items {
			if it.(map[string]any)["status"] == "up" {
				up++
			}
		}
		return up == 2
	})

	ph := newUAC(t, "127.0.0.26", a.SIP)
	cseq := 0
	if res := ph.subscribe(t, "3001", f.boxPass, "mwi-x", &cseq, "", "600"); res.StatusCode != 200 {
		t.Fatalf("SUBSCRIBE through A: %d", res.StatusCode)
	}
	first := ph.nextRequest(t, sip.NOTIFY, 10*time.Second)
	ph.answer(first, 200)

	caller := newPhone(t, "127.0.0.27", "3002", nil)
	leaveMessage(t, caller.call(t, b, "3001", "3002", f.callerPwd), toneHz, time.Second)
	n := ph.nextRequest(t, sip.NOTIFY, 10*time.Second)
	ph.answer(n, 200)
	if !strings.Contains(string(n.Body()), "Voice-Message: 1/0") || n.CallID().Value() != "mwi-x" {
		t.Errorf("NOTIFY after a message left through node B: Call-ID %s\n%s\nwant Voice-Message: 1/0 in the subscription",
			n.CallID().Value(), n.Body())
	}
}
