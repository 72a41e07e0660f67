package digest

import (
	"errors"
	"fmt"
	"strings"

	idigest "github.com/icholy/digest"
)

// Answer is the client side, for sipward's own requests to a party that
// challenges them (egress authentication to a customer's PBX): from the
// challenge header values of one 401 or 407 (WWW-Authenticate or
// Proxy-Authenticate), it picks the strongest it can answer — SHA-256, then
// MD5 (RFC 8760 §2.4: the first the client supports of those offered) —
// and returns the credentials header value for method and uri, with
// qop=auth when the challenge offers it, and nonce count 1 (a challenge is
// answered once). The computation is github.com/icholy/digest's.
//
// The error names what was offered when nothing can be answered; it never
// holds the password.
func Answer(challenges []string, method, uri, username, password string) (string, error) {
	var best *idigest.Challenge
	rank := -1
	var offered []string
	for _, v := range challenges {
		c, err := idigest.ParseChallenge(v)
		if err != nil {
			offered = append(offered, "unreadable")
			continue
		}
		alg := strings.ToUpper(c.Algorithm)
		offered = append(offered, algName(alg))
		r := clientRank(alg)
		if r < 0 || len(c.QOP) > 0 && !c.SupportsQOP("auth") {
			continue
		}
		if r > rank {
			best, rank = c, r
		}
	}
	if best == nil {
		if len(offered) == 0 {
			return "", errors.New("digest: no challenge to answer")
		}
		return "", fmt.Errorf("digest: cannot answer a challenge of %s (MD5 and SHA-256 with qop auth or none are)", strings.Join(offered, ", "))
	}
	if len(best.QOP) > 0 {
		best.QOP = []string{"auth"} // never auth-int: the body is not ours to hash twice
	}
	cred, err := idigest.Digest(best, idigest.Options{Method: method, URI: uri, Username: username, Password: password, Count: 1})
	if err != nil {
		return "", fmt.Errorf("digest: answering %s: %w", algName(strings.ToUpper(best.Algorithm)), err)
	}
	return cred.String(), nil
}

// clientRank orders the algorithms Answer uses; -1 for the others.
func clientRank(alg string) int {
	switch alg {
	case "", "MD5":
		return 0
	case "SHA-256":
		return 1
	}
	return -1
}

func algName(alg string) string {
	if alg == "" {
		return "MD5"
	}
	return alg
}
