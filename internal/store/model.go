package store

import "time"

// Direction says which way calls flow for an IP endpoint.
type Direction string

// Directions of an IP endpoint.
const (
	DirSends    Direction = "sends"    // the endpoint sends calls to us (ingress)
	DirReceives Direction = "receives" // we send calls to it (egress)
)

// Protocol is the SIP transport an endpoint or SIP user must use.
type Protocol string

// Protocols accepted on endpoints and SIP users.
const (
	ProtoUDP     Protocol = "udp"
	ProtoTCP     Protocol = "tcp"
	ProtoTLS     Protocol = "tls"
	ProtoTLSSRTP Protocol = "tls-srtp"
)

// MediaRelay says when a party's media goes through the media relay
// (rtpengine, sipward serve --rtpengine).
type MediaRelay string

// Media relay modes.
const (
	RelayAuto   MediaRelay = "auto"   // when the party is behind NAT or its SDP names a private address
	RelayAlways MediaRelay = "always" // every call
	RelayNever  MediaRelay = "never"  // no call (its NAT is handled by symmetric RTP alone)
)

// Session timers (RFC 4028) of an IP endpoint or SIP user: the interval
// sipward offers as Session-Expires, in seconds, and its bounds. A new
// endpoint or user has session timers on with the default interval.
const (
	DefaultSessionExpires = 1800
	MinSessionExpires     = 90 // also the Min-SE sipward answers 422 with
	MaxSessionExpires     = 86400
)

// NATPing is the NAT/SIP ping mode of a SIP user.
type NATPing string

// NAT ping modes.
const (
	NATPingDisabled NATPing = "disabled"
	NATPingEnabled  NATPing = "enabled"
	NATPingTimeout  NATPing = "timeout"
)

// Account is a customer of the platform.
type Account struct {
	ID        int64     `json:"id"`
	Name      string    `json:"name"`
	Channels  int       `json:"channels"`           // max concurrent calls of the whole account, and the sum its SIP users' channels must fit in; 0 = no limit
	CPS       int       `json:"cps"`                // max new calls per second; 0 = unlimited
	BlockFrom int64     `json:"number_block_start"` // first internal number (extension); 0 with BlockSize 0 = no block
	BlockSize int64     `json:"number_block_size"`  // how many numbers the block holds; 0 = no block
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CLIPattern is a caller ID an account may present: an exact number or an RE2 regex.
type CLIPattern struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"account_id"`
	Pattern   string `json:"pattern"`
	Regex     bool   `json:"regex"` // false: Pattern is an exact number
}

// DID is a phone number (E.164) owned by an account, routed to one of its SIP users
// or, when SIPUserID is nil, to the account's receives endpoints.
type DID struct {
	ID        int64  `json:"id"`
	AccountID int64  `json:"account_id"`
	Number    string `json:"number"`
	SIPUserID *int64 `json:"sip_user_id,omitempty"`
}

// IPEndpoint is an "IP Authentication" entry of an account.
type IPEndpoint struct {
	ID                int64      `json:"id"`
	AccountID         int64      `json:"account_id"`
	Address           string     `json:"address"` // IP, CIDR, or FQDN (receives only); stored canonical
	Direction         Direction  `json:"direction"`
	Channels          int        `json:"channels"` // 0 = unlimited
	CPS               int        `json:"cps"`      // 0 = unlimited
	Protocol          Protocol   `json:"protocol"`
	Port              int        `json:"port"`
	Manufacturer      string     `json:"manufacturer"`
	Version           string     `json:"version"`
	DialPattern       string     `json:"dial_pattern"`
	TechPrefix        string     `json:"tech_prefix"`
	CLIPrefix         string     `json:"cli_prefix"`
	ForceFrom         string     `json:"force_from"`
	Username          string     `json:"username"`           // egress credentials (calls sipward sends to it)
	Password          string     `json:"password,omitempty"` // write-only: never returned
	PasswordSet       bool       `json:"password_set"`       // read-only: an egress password is stored
	PasswordSealed    []byte     `json:"-"`                  // AES-GCM sealed egress password (at rest)
	ForceNAT          bool       `json:"force_nat"`
	InterceptReinvite bool       `json:"intercept_reinvite"`
	OutboundProxy     string     `json:"outbound_proxy"`
	CLIAuth           bool       `json:"cli_auth"`
	DisableNAT        bool       `json:"disable_nat"`
	MediaRelay        MediaRelay `json:"media_relay"`
	SmartExtension    bool       `json:"smart_extension"`
	SessionTimers     bool       `json:"session_timers"`  // RFC 4028 session timers on its calls
	SessionExpires    int        `json:"session_expires"` // seconds offered as Session-Expires, MinSessionExpires to MaxSessionExpires
	RestrictedCodecs  []string   `json:"restricted_codecs"`
	CreatedAt         time.Time  `json:"created_at"`
	UpdatedAt         time.Time  `json:"updated_at"`
}

// Voicemail holds a SIP user's voicemail settings.
type Voicemail struct {
	Enabled bool   `json:"enabled"`
	Email   string `json:"email"`
	PIN     string `json:"pin,omitempty"` // write-only: stored only as PINHash
	PINHash string `json:"-"`
	PINSet  bool   `json:"pin_set"`
	// RingTimeout is how long, in seconds, a call rings the user's phones
	// before it goes to the mailbox (MinRingTimeout to MaxRingTimeout; 0 on
	// input means DefaultRingTimeout).
	RingTimeout int `json:"ring_timeout"`
}

// Voicemail ring timeout bounds and default, in seconds.
const (
	MinRingTimeout     = 5
	MaxRingTimeout     = 300
	DefaultRingTimeout = 25
)

// SIPUser is a "SIP User Authentication" entry: digest credentials of an account.
type SIPUser struct {
	ID             int64      `json:"id"`
	AccountID      int64      `json:"account_id"`
	Username       string     `json:"username"`
	Realm          string     `json:"realm"`
	Password       string     `json:"password,omitempty"` // write-only; returned once when generated or reset
	HA1MD5         string     `json:"-"`                  // hex MD5(username:realm:password)
	HA1SHA256      string     `json:"-"`                  // hex SHA-256(username:realm:password)
	ProfileID      *int64     `json:"profile_id,omitempty"`
	IPWhitelist    []string   `json:"ip_whitelist"`
	RetainDID      bool       `json:"retain_did"`
	SmartExtension bool       `json:"smart_extension"`
	MediaRelay     MediaRelay `json:"media_relay"`
	SessionTimers  bool       `json:"session_timers"`  // RFC 4028 session timers on its calls (the user's own, not a profile's)
	SessionExpires int        `json:"session_expires"` // seconds offered as Session-Expires, MinSessionExpires to MaxSessionExpires
	Voicemail      Voicemail  `json:"voicemail"`
	CreatedAt      time.Time  `json:"created_at"`
	UpdatedAt      time.Time  `json:"updated_at"`

	// The user's own settings; nil inherits the profile's value (or the
	// default without a profile). Effective holds what applies.
	Channels         *int      `json:"channels"` // at least 1, held from the account's capacity (no unlimited SIP user)
	CPS              *int      `json:"cps"`      // 0 = unlimited
	Protocol         *Protocol `json:"protocol"`
	NATPing          *NATPing  `json:"nat_ping"`
	RestrictedCodecs []string  `json:"restricted_codecs"` // nil inherits; an empty list is a value (no restriction)
	// Effective is read-only: the settings that apply and where each comes
	// from. The store resolves it on every write and read (Resolve), and
	// writes to a profile reach its users' Effective in the same
	// transaction; the call path reads only Effective.
	Effective Effective `json:"effective"`
}

// SettingSource says where an effective setting of a SIP user comes from.
type SettingSource string

// Setting sources.
const (
	FromUser    SettingSource = "user"
	FromProfile SettingSource = "profile"
	FromDefault SettingSource = "default"
)

// Setting is one effective setting of a SIP user.
type Setting[T any] struct {
	Value T             `json:"value"`
	From  SettingSource `json:"from"`
}

// Effective are the settings that apply to a SIP user: its own where set,
// else its profile's, else the defaults (1 channel, no CPS limit, UDP, NAT
// ping disabled, no codec restriction).
type Effective struct {
	Channels         Setting[int]      `json:"channels"`
	CPS              Setting[int]      `json:"cps"`
	Protocol         Setting[Protocol] `json:"protocol"`
	NATPing          Setting[NATPing]  `json:"nat_ping"`
	RestrictedCodecs Setting[[]string] `json:"restricted_codecs"`
}

// Inheritable names the SIP user settings a profile can give, as in JSON.
var Inheritable = []string{"channels", "cps", "protocol", "nat_ping", "restricted_codecs"}

// Inherited returns the names (as in Inheritable) of the settings u takes
// from its profile or the defaults.
func (e *Effective) Inherited() []string {
	var out []string
	for i, from := range []SettingSource{e.Channels.From, e.CPS.From, e.Protocol.From, e.NATPing.From, e.RestrictedCodecs.From} {
		if from != FromUser {
			out = append(out, Inheritable[i])
		}
	}
	return out
}

// Resolve sets u.Effective from u's own settings and p, its profile (nil
// when it has none).
func Resolve(u *SIPUser, p *Profile) {
	inherit := FromDefault
	def := Profile{Channels: 1, Protocol: ProtoUDP, NATPing: NATPingDisabled, RestrictedCodecs: []string{}}
	if p != nil {
		inherit, def = FromProfile, *p
	}
	u.Effective = Effective{
		Channels:         pick(u.Channels, def.Channels, inherit),
		CPS:              pick(u.CPS, def.CPS, inherit),
		Protocol:         pick(u.Protocol, def.Protocol, inherit),
		NATPing:          pick(u.NATPing, def.NATPing, inherit),
		RestrictedCodecs: Setting[[]string]{Value: def.RestrictedCodecs, From: inherit},
	}
	if u.RestrictedCodecs != nil {
		u.Effective.RestrictedCodecs = Setting[[]string]{Value: u.RestrictedCodecs, From: FromUser}
	}
	if u.Effective.RestrictedCodecs.Value == nil {
		u.Effective.RestrictedCodecs.Value = []string{}
	}
}

func pick[T any](own *T, inherited T, from SettingSource) Setting[T] {
	if own != nil {
		return Setting[T]{Value: *own, From: FromUser}
	}
	return Setting[T]{Value: inherited, From: from}
}

// OwnerKind names what a rewrite rule belongs to.
type OwnerKind string

// Owners of rewrite rules.
const (
	OwnerEndpoint OwnerKind = "endpoint"
	OwnerSIPUser  OwnerKind = "sip_user"
)

// RewriteType says which number a rewrite rule rewrites.
type RewriteType string

// Rewrite rule targets.
const (
	RewriteDestination RewriteType = "destination"
	RewriteCLI         RewriteType = "cli"
)

// RewriteRule is one parameter-rewrite rule of an endpoint or SIP user.
// Rules apply in ascending Order; the first that matches fires.
type RewriteRule struct {
	ID          int64       `json:"id"`
	OwnerKind   OwnerKind   `json:"owner_kind"`
	OwnerID     int64       `json:"owner_id"`
	Type        RewriteType `json:"type"`
	Regex       bool        `json:"regex"` // false: Match is a prefix
	Match       string      `json:"match"`
	Replacement string      `json:"replacement"`
	Order       int         `json:"order"`
}

// Profile is a named set of settings its SIP users take unless they set
// their own (see Effective). A change reaches its users at once.
type Profile struct {
	ID               int64    `json:"id"`
	Name             string   `json:"name"`
	Channels         int      `json:"channels"`
	CPS              int      `json:"cps"`
	Protocol         Protocol `json:"protocol"`
	NATPing          NATPing  `json:"nat_ping"`
	RestrictedCodecs []string `json:"restricted_codecs"`
}

// BanSource says who created a firewall ban.
type BanSource string

// Ban sources.
const (
	BanOperator  BanSource = "operator"
	BanDetection BanSource = "detection"
)

// Ban is a firewall ban of an address or CIDR.
type Ban struct {
	ID        int64     `json:"id"`
	Address   string    `json:"address"` // canonical CIDR
	Reason    string    `json:"reason"`
	Source    BanSource `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // zero = never
}

// TokenScope says what an API token may see.
type TokenScope string

// Token scopes.
const (
	ScopeOperator TokenScope = "operator"
	ScopeAccount  TokenScope = "account"
)

// Token is an API bearer token, stored only as a SHA-256 hash of its secret.
type Token struct {
	ID        int64      `json:"id"`
	Name      string     `json:"name"`
	Scope     TokenScope `json:"scope"`
	AccountID *int64     `json:"account_id,omitempty"`
	Hash      string     `json:"-"`               // hex SHA-256 of the secret
	Secret    string     `json:"token,omitempty"` // returned once on creation
	CreatedAt time.Time  `json:"created_at"`
}

// Login is a web UI sign-in: an operator, or a user of one account (the
// customer portal). Scope and AccountID say what it sees, as for a Token.
// The password is stored only as an argon2id hash.
type Login struct {
	ID        int64      `json:"id"`
	Username  string     `json:"username"` // unique
	Scope     TokenScope `json:"scope"`
	AccountID *int64     `json:"account_id,omitempty"` // set for ScopeAccount only
	Password  string     `json:"password,omitempty"`   // write-only; returned once when generated
	Hash      string     `json:"-"`                    // argon2id PHC string of the password
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
}

// ChangeKind names the kind of object a Change is about.
type ChangeKind string

// Kinds of logged changes. Settings and registrar bindings are not logged.
const (
	ChangeAccount     ChangeKind = "account"
	ChangeEndpoint    ChangeKind = "ip_endpoint"
	ChangeSIPUser     ChangeKind = "sip_user"
	ChangeCLIPattern  ChangeKind = "cli_pattern"
	ChangeDID         ChangeKind = "did"
	ChangeRewriteRule ChangeKind = "rewrite_rule"
	ChangeBan         ChangeKind = "ban"
	ChangeProfile     ChangeKind = "profile"
	ChangeToken       ChangeKind = "token"
	ChangeLogin       ChangeKind = "login"
)

// Change says that the Update committed at Revision created, updated or
// deleted the object of that kind and ID. It does not say which: reading
// the object at a later revision tells (ErrNotFound: deleted).
type Change struct {
	Revision int64      `json:"revision"`
	Kind     ChangeKind `json:"kind"`
	ID       int64      `json:"id"`
}

// ChangeKind returns the kind of change logged for an owner of kind k
// (OwnerEndpoint or OwnerSIPUser) when its rewrite rules change.
func (k OwnerKind) ChangeKind() ChangeKind {
	if k == OwnerSIPUser {
		return ChangeSIPUser
	}
	return ChangeEndpoint
}
