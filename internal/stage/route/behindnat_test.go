package route

import (
	"net/netip"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// TestBehindNAT: a binding is NAT-ed when its Contact names a private
// address or not the one it registered from; a host name tells nothing.
func TestBehindNAT(t *testing.T) {
	src := netip.MustParseAddr("203.0.113.7")
	for contact, want := range map[string]bool{
		"sip:2001@192.168.1.30:5060": true,
		"sip:2001@203.0.113.7:5060":  false,
		"sip:2001@203.0.113.8:5060":  true,
		"sip:2001@phone.example.com": false,
		"sip:2001@[fe80::1]:5060":    true,
	} {
		var u sip.Uri
		if err := sip.ParseUri(contact, &u); err != nil {
			t.Fatal(err)
		}
		if got := behindNAT(u, src); got != want {
			t.Errorf("behindNAT(%s) = %v, want %v", contact, got, want)
		}
	}
}
