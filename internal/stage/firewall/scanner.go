package firewall

import (
	"strings"

	"github.com/emiago/sipgo/sip"
)

// scannerAgents are substrings of the User-Agent of SIP scanning and
// password-guessing tools (SIPVicious' svmap/svwar/svcrack say
// "friendly-scanner"; the others are the ones fail2ban and Kamailio
// deployments commonly drop). Lower case; matched case-insensitively.
var scannerAgents = []string{
	"friendly-scanner",
	"sipvicious",
	"sipcli",
	"sip-scan",
	"sipscan",
	"vaxsipuseragent",
	"sundayddr",
	"iwar",
	"sivus",
	"pplsip",
}

// scannerAgent reports whether m's User-Agent names a scanner. It walks the
// headers itself: sipgo's GetHeader lower-cases every name it passes,
// which allocates for names it does not know.
func scannerAgent(m *sip.Request) bool {
	if m == nil {
		return false
	}
	for _, h := range m.Headers() {
		if strings.EqualFold(h.Name(), "User-Agent") {
			return isScannerAgent(h.Value())
		}
	}
	return false
}

// isScannerAgent reports whether ua contains one of scannerAgents, ignoring
// ASCII case, without allocating.
func isScannerAgent(ua string) bool {
	for _, s := range scannerAgents {
		if containsFold(ua, s) {
			return true
		}
	}
	return false
}

// containsFold reports whether s contains lower (lower case ASCII),
// ignoring ASCII case.
func containsFold(s, lower string) bool {
	n := len(lower)
	for i := 0; i+n <= len(s); i++ {
		j := 0
		for ; j < n; j++ {
			c := s[i+j]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != lower[j] {
				break
			}
		}
		if j == n {
			return true
		}
	}
	return false
}
