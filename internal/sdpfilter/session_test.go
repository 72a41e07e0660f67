package sdpfilter

import "testing"

func TestSendRecv(t *testing.T) {
	held := "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=sendonly\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=recvonly\r\n"
	want := "v=0\r\no=- 1 2 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
	if got := string(SendRecv([]byte(held))); got != want {
		t.Errorf("SendRecv:\n%q\nwant\n%q", got, want)
	}
	plain := []byte(want)
	if got := SendRecv(plain); &got[0] != &plain[0] {
		t.Error("SendRecv copied an SDP without direction attributes")
	}
}

func TestReorigin(t *testing.T) {
	prev := "v=0\r\no=sipward 77 5 IN IP4 203.0.113.1\r\ns=-\r\n"
	next := "v=0\r\no=carrier 9 1 IN IP4 198.51.100.9\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nm=audio 5000 RTP/AVP 8\r\n"
	want := "v=0\r\no=sipward 77 6 IN IP4 203.0.113.1\r\ns=-\r\nc=IN IP4 198.51.100.9\r\nm=audio 5000 RTP/AVP 8\r\n"
	if got := string(Reorigin([]byte(next), []byte(prev))); got != want {
		t.Errorf("Reorigin:\n%q\nwant\n%q", got, want)
	}
	for _, bad := range []string{"", "v=0\r\no=broken\r\n", "v=0\r\no=a 1 x IN IP4 1.2.3.4\r\n"} {
		if got := string(Reorigin([]byte(next), []byte(bad))); got != next {
			t.Errorf("Reorigin with prev %q changed next: %q", bad, got)
		}
	}
}
