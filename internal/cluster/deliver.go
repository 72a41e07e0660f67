package cluster

// Signed delivery between nodes: a node that routes a call to a NAT-ed
// phone registered through another node sends the INVITE to that node with
// DeliverHeader, which names the binding and is signed over it, the far
// leg's Call-ID and the time under a key every node derives from the
// store's shared secret. The receiving node delivers such a call straight
// to its own binding: no authentication, no limits (the sending node
// applied them), and never onwards to a third node.

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// DeliverHeader carries a signed delivery:
// "<username> <contact> <unix-seconds> <signature>".
const DeliverHeader = "X-Sipward-Deliver"

// DeliverMaxAge is how far a delivery's time may lie from the receiving
// node's clock, either way.
const DeliverMaxAge = time.Minute

// Deliveries signs and verifies deliveries between nodes.
type Deliveries struct {
	key []byte
}

// NewDeliveries returns the signer of the cluster whose nodes share secret
// (provision.Service.NonceSecret: the store's secret).
func NewDeliveries(secret []byte) (*Deliveries, error) {
	if len(secret) < 16 {
		return nil, errors.New("cluster: deliveries: secret shorter than 16 bytes")
	}
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sipward node delivery v1"))
	return &Deliveries{key: m.Sum(nil)}, nil
}

func (d *Deliveries) sign(username, contact, callID, ts string) string {
	m := hmac.New(sha256.New, d.key)
	for _, s := range []string{username, contact, callID, ts} {
		m.Write([]byte(s))
		m.Write([]byte{0})
	}
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Sign returns the value of DeliverHeader for a call with Call-ID callID
// to the binding of username and contact, at now.
func (d *Deliveries) Sign(username, contact, callID string, now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 10)
	return username + " " + contact + " " + ts + " " + d.sign(username, contact, callID, ts)
}

// Verify reads a DeliverHeader value of a request with Call-ID callID: ok
// when its signature holds and its time is within DeliverMaxAge of now.
func (d *Deliveries) Verify(value, callID string, now time.Time) (username, contact string, ok bool) {
	f := strings.Fields(value)
	if len(f) != 4 {
		return "", "", false
	}
	sec, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil {
		return "", "", false
	}
	if age := now.Sub(time.Unix(sec, 0)); age > DeliverMaxAge || age < -DeliverMaxAge {
		return "", "", false
	}
	if !hmac.Equal([]byte(f[3]), []byte(d.sign(f[0], f[1], callID, f[2]))) {
		return "", "", false
	}
	return f[0], f[1], true
}
