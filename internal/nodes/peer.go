package nodes

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// PeerPath is the root of the node-to-node routes on a node's HTTP
// address: PeerPath+"calls" and PeerPath+"decisions" answer the node's own
// rows to a signed request.
const PeerPath = "/internal/v1/nodes/"

// authHeader carries a node-to-node request's signature:
// "v1 <node-id> <unix-seconds> <hex HMAC-SHA256>".
const authHeader = "Sipward-Node-Auth"

// maxSkew is how far a signed request's time may be from the receiver's.
const maxSkew = 30 * time.Second

// signer signs and checks node-to-node requests under a key every node of
// the cluster derives from the store's nonce secret.
type signer struct {
	key []byte
	id  string // this node's
}

func newSigner(secret []byte, id string) (signer, error) {
	if len(secret) < 16 {
		return signer{}, errors.New("nodes: node-to-node key: the shared secret is shorter than 16 bytes")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sipward node-to-node requests v1"))
	return signer{key: m.Sum(nil), id: id}, nil
}

func (s signer) mac(id, ts, method, uri string) []byte {
	m := hmac.New(sha256.New, s.key)
	fmt.Fprintf(m, "v1\n%s\n%s\n%s\n%s", id, ts, method, uri)
	return m.Sum(nil)
}

// sign adds the signature of this node at now to req.
func (s signer) sign(req *http.Request, now time.Time) {
	ts := strconv.FormatInt(now.Unix(), 10)
	sum := s.mac(s.id, ts, req.Method, req.URL.RequestURI())
	req.Header.Set(authHeader, "v1 "+s.id+" "+ts+" "+hex.EncodeToString(sum))
}

// verify checks r's signature at now and returns the signing node's ID.
func (s signer) verify(r *http.Request, now time.Time) (string, error) {
	f := strings.Fields(r.Header.Get(authHeader))
	if len(f) != 4 || f[0] != "v1" {
		return "", errors.New("no node signature")
	}
	sec, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return "", errors.New("bad signature time")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > maxSkew || d < -maxSkew {
		return "", fmt.Errorf("signature time %s off by %s", f[2], d.Round(time.Second))
	}
	got, err := hex.DecodeString(f[3])
	if err != nil || !hmac.Equal(got, s.mac(f[1], f[2], r.Method, r.URL.RequestURI())) {
		return "", errors.New("bad signature")
	}
	return f[1], nil
}
