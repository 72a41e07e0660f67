package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/sipward/sipward/internal/rtpengine"
	"github.com/sipward/sipward/internal/rtpengine/rtpenginetest"
)

// natLab is a phone's network behind a NAT, built from namespaces this
// test creates: phone (PhoneIP, private) → router (MASQUERADE) → the host,
// which reaches the router's public side at HostIP. Nothing leaves the
// namespaces and the host's own veth.
type natLab struct {
	Phone, Router    string // namespace names
	PhoneIP, HostIP  string
	RouterPublicIP   string
	hostLink, pubRtr string
}

// newNATLab builds the lab, or skips the test where it cannot (not root, no
// ip or iptables), failing instead under CI.
func newNATLab(t *testing.T) *natLab {
	t.Helper()
	_, errIP := exec.LookPath("ip")
	_, errIPT := exec.LookPath("iptables")
	if os.Geteuid() != 0 || errIP != nil || errIPT != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("the NAT lab needs root, ip and iptables (network namespaces behind MASQUERADE)")
		}
		t.Skip("the NAT lab needs root, ip and iptables")
	}
	k := os.Getpid()%200 + 20
	l := &natLab{Phone: fmt.Sprintf("swphone%d", k), Router: fmt.Sprintf("swnat%d", k),
		PhoneIP: fmt.Sprintf("10.%d.0.2", k), HostIP: fmt.Sprintf("172.31.%d.1", k), RouterPublicIP: fmt.Sprintf("172.31.%d.2", k),
		hostLink: fmt.Sprintf("swh%d", k), pubRtr: fmt.Sprintf("swr%d", k)}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	cleanup := func() {
		exec.Command("ip", "netns", "del", l.Phone).Run()
		exec.Command("ip", "netns", "del", l.Router).Run()
		exec.Command("ip", "link", "del", l.hostLink).Run()
	}
	cleanup() // a lab left by a killed run
	t.Cleanup(cleanup)
	inR := func(args ...string) { run(append([]string{"ip", "netns", "exec", l.Router}, args...)...) }
	inP := func(args ...string) { run(append([]string{"ip", "netns", "exec", l.Phone}, args...)...) }
	run("ip", "netns", "add", l.Router)
	run("ip", "netns", "add", l.Phone)
	// host ↔ router (the router's public side)
	run("ip", "link", "add", l.hostLink, "type", "veth", "peer", "name", l.pubRtr)
	run("ip", "link", "set", l.pubRtr, "netns", l.Router)
	run("ip", "addr", "add", l.HostIP+"/30", "dev", l.hostLink)
	run("ip", "link", "set", l.hostLink, "up")
	inR("ip", "addr", "add", l.RouterPublicIP+"/30", "dev", l.pubRtr)
	inR("ip", "link", "set", l.pubRtr, "up")
	inR("ip", "link", "set", "lo", "up")
	inR("ip", "route", "add", "default", "via", l.HostIP)
	// router ↔ phone (the private side)
	inR("ip", "link", "add", "lan0", "type", "veth", "peer", "name", "eth0")
	inR("ip", "link", "set", "eth0", "netns", l.Phone)
	inR("ip", "addr", "add", fmt.Sprintf("10.%d.0.1/24", k), "dev", "lan0")
	inR("ip", "link", "set", "lan0", "up")
	inP("ip", "addr", "add", l.PhoneIP+"/24", "dev", "eth0")
	inP("ip", "link", "set", "eth0", "up")
	inP("ip", "link", "set", "lo", "up")
	inP("ip", "route", "add", "default", "via", fmt.Sprintf("10.%d.0.1", k))
	// The router forwards (its own namespace's setting) and hides the phone.
	inR("sysctl", "-qw", "net.ipv4.ip_forward=1")
	inR("iptables", "-t", "nat", "-A", "POSTROUTING", "-o", l.pubRtr, "-j", "MASQUERADE")
	return l
}

// TestPhoneBehindNAT: a phone in a private network behind a MASQUERADE NAT
// registers through sipward (its Contact names its private address), is
// kept reachable by NAT pings (OPTIONS through the NAT, answered), and is
// called from the core through a DID; with --rtpengine the call's media is
// anchored on the relay: the core sees the relay's address, never the
// phone's private one, and RTP flows both ways through the NAT (counted at
// both ends); after the BYE the relay holds nothing.
func TestPhoneBehindNAT(t *testing.T) {
	if os.Getenv("SIPWARD_NAT_PHONE") != "" {
		t.Skip("inside the phone's namespace: only the phone runs")
	}
	lab := newNATLab(t)
	eng := rtpenginetest.StartOn(t, lab.HostIP)
	core := newRawUAS(t, "127.0.0.1", 200)
	n := start(t, "", "--sip-addr", lab.HostIP+":0", "--upstream", "sip:"+core.addr, "--core-addr", "127.0.0.1/32",
		"--rtpengine", "udp:"+eng.Addr, "--nat-ping-interval", "1s")
	acc := id(n.mustAPI(t, 201, "POST", "/accounts", map[string]any{"name": "Acme", "dids": []map[string]any{{"number": "442071230009"}}}))
	user := n.mustAPI(t, 201, "POST", fmt.Sprintf("/accounts/%d/sip-users", acc), map[string]any{"username": "2009", "nat_ping": "enabled"})
	dids := n.mustAPI(t, 200, "GET", fmt.Sprintf("/accounts/%d/dids", acc), nil)["items"].([]any)
	n.mustAPI(t, 200, "PATCH", fmt.Sprintf("/accounts/%d/dids/%d", acc, id(dids[0].(map[string]any))), map[string]any{"sip_user_id": id(user)})
	waitSnapshot(t, n)

	// The phone: this test binary again, inside the phone's namespace.
	phone := exec.Command("ip", "netns", "exec", lab.Phone, os.Args[0], "-test.run", "^TestNATPhoneHelper$", "-test.v", "-test.count=1")
	phone.Env = append(os.Environ(), "SIPWARD_NAT_PHONE=1", "SIPWARD_NAT_SIP="+n.SIP, "SIPWARD_NAT_PASS="+user["password"].(string),
		"SIPWARD_NAT_IP="+lab.PhoneIP)
	out, err := phone.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	phone.Stderr = phone.Stdout
	if err := phone.Start(); err != nil {
		t.Fatal(err)
	}
	defer phone.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var phoneLog []string
	await := func(prefix string, timeout time.Duration) string {
		t.Helper()
		deadline := time.After(timeout)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("the phone exited before %q:\n%s", prefix, strings.Join(phoneLog, "\n"))
				}
				phoneLog = append(phoneLog, l)
				if strings.HasPrefix(l, prefix) {
					return strings.TrimPrefix(l, prefix)
				}
			case <-deadline:
				t.Fatalf("the phone did not say %q in %v:\n%s", prefix, timeout, strings.Join(phoneLog, "\n"))
			}
		}
	}
	await("PHONE REGISTERED", 20*time.Second)
	regs := n.mustAPI(t, 200, "GET", "/registrations?username=2009", nil)
	if !strings.Contains(fmt.Sprint(regs), lab.RouterPublicIP) {
		t.Errorf("the binding's source is not the NAT's public address %s: %v", lab.RouterPublicIP, regs)
	}

	// The core calls the DID from 127.0.0.1.
	coreRTP := rtpenginetest.NewPeer(t, "127.0.0.1")
	coreSide := newUAC(t, "127.0.0.1", n.SIP)
	cc := newCall("441234567890", "442071230009")
	coreSide.send(withSDP(coreSide.invite(cc), coreRTP.SDP("127.0.0.1")))
	_, res := coreSide.final("INVITE", 10*time.Second)
	coreSide.ack(cc, res)
	if res.StatusCode != 200 {
		t.Fatalf("the call to the phone: %d %s\n%s", res.StatusCode, res.Reason, strings.Join(phoneLog, "\n"))
	}
	toPhone := mediaDest(t, string(res.Body()))
	if strings.HasPrefix(toPhone, lab.PhoneIP+":") || !strings.HasPrefix(toPhone, lab.HostIP+":") {
		t.Errorf("the core is sent to %s, want the relay on %s (never the phone's private %s)", toPhone, lab.HostIP, lab.PhoneIP)
	}
	for range 5 { // while the phone talks for two seconds
		mustSend(t, coreRTP, toPhone, 20)
		time.Sleep(300 * time.Millisecond)
	}
	if got := coreRTP.Got(); got < 20 {
		t.Errorf("the core got %d RTP packets from the phone through the NAT and the relay, want 20+", got)
	}
	if st := coreSide.bye(cc); st != 200 {
		t.Errorf("BYE: %d", st)
	}
	result := await("PHONE RESULT ", 15*time.Second)
	fields := map[string]int{}
	for _, f := range strings.Fields(result) {
		k, v, _ := strings.Cut(f, "=")
		fields[k], _ = strconv.Atoi(v)
	}
	if fields["rtp_in"] < 20 {
		t.Errorf("the phone got %d RTP packets through the relay and the NAT, want 20+", fields["rtp_in"])
	}
	if fields["options"] < 1 {
		t.Errorf("the phone got %d NAT pings (OPTIONS through the NAT), want 1+", fields["options"])
	}
	relay, err := rtpengine.New([]string{eng.Addr}, rtpengine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ids, err := relay.List(t.Context())
		if err == nil && len(ids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("the relay still holds %v after the BYE", ids)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("phone: %s", result)
}

// TestNATPhoneHelper is the phone of TestPhoneBehindNAT, run by it inside
// the phone's namespace: it registers, answers NAT pings and the call with
// its private address in Contact and SDP, talks for two seconds, and on the
// BYE prints what it received.
func TestNATPhoneHelper(t *testing.T) {
	if os.Getenv("SIPWARD_NAT_PHONE") == "" {
		t.Skip("the phone of TestPhoneBehindNAT, run by it inside its namespace")
	}
	ip := os.Getenv("SIPWARD_NAT_IP")
	u := newUAC(t, ip, os.Getenv("SIPWARD_NAT_SIP"))
	rtp := rtpenginetest.NewPeer(t, ip)
	cseq := 0
	if res := u.register(t, "2009", os.Getenv("SIPWARD_NAT_PASS"), "nat-phone", &cseq, []string{"<sip:2009@" + u.local + ">"}, "300"); res.StatusCode != 200 {
		t.Fatalf("REGISTER: %d %s", res.StatusCode, res.Reason)
	}
	fmt.Println("PHONE REGISTERED")
	options := 0
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		_, m := u.recv(2 * time.Second)
		req, ok := m.(*sip.Request)
		if !ok {
			continue
		}
		switch req.Method {
		case sip.OPTIONS:
			options++
			u.answer(req, 200)
		case sip.INVITE:
			ans := sip.NewSDPResponseFromRequest(req, []byte(rtp.SDP(ip)))
			ans.To().Params.Add("tag", "phone9")
			ans.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "2009", Host: ip, Port: port(u.local)}})
			u.send(ans.String())
			dest := mediaDest(t, string(req.Body()))
			for range 4 { // talk for about two seconds (the core's RTP is counted meanwhile)
				mustSend(t, rtp, dest, 25)
				time.Sleep(400 * time.Millisecond)
			}
		case sip.BYE:
			u.answer(req, 200)
			fmt.Printf("PHONE RESULT rtp_in=%d options=%d\n", rtp.Got(), options)
			return
		}
	}
	t.Fatal("no BYE within a minute")
}
