package edge

import (
	"fmt"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// Sender sends sipward's own requests — the B2BUA's far legs and in-dialog
// requests, the registrar's NAT pings and MESSAGEs — with one sipgo client
// per transport. Over UDP its requests leave from the listening socket
// (through the UDP transport's client transactions), so that IP-
// authenticated peers and NAT bindings see sipward's port.
type Sender struct {
	clients  map[string]*sipgo.Client // by transport: udp, tcp, tls
	contacts map[string]sip.Uri       // sipward's Contact per transport
	host     string
}

// Client returns the client of transport (udp, tcp or tls).
func (s *Sender) Client(transport string) (*sipgo.Client, error) {
	c := s.clients[transport]
	if c == nil {
		return nil, fmt.Errorf("edge: no %s listener to send from", transport)
	}
	return c, nil
}

// Contact returns sipward's Contact for a dialog over transport.
func (s *Sender) Contact(transport string) sip.Uri { return s.contacts[transport] }

// Host returns the host sipward puts in its From, Via and Contact.
func (s *Sender) Host() string { return s.host }
