package series

// kindKey is a kind of refusal: the method refused, the stage that refused,
// the status it answered (0: dropped) and the reason phrase.
type kindKey struct {
	method, stage string
	status        int
	reason        string
}

// otherKind is where refusals go once MaxKinds kinds are known.
const otherKind uint16 = 0

// kindTable interns the kinds of refusal: at most MaxKinds, the first of
// which is "other".
type kindTable struct {
	ids  map[kindKey]uint16
	keys []kindKey
}

func (t *kindTable) init() {
	t.ids = map[kindKey]uint16{}
	t.keys = []kindKey{{method: "other", stage: "other", reason: "other"}}
}

// intern returns the kind's index; a lookup of a known kind does not
// allocate.
func (t *kindTable) intern(method, stage string, status int, reason string) uint16 {
	k := kindKey{method: method, stage: stage, status: status, reason: reason}
	if id, ok := t.ids[k]; ok {
		return id
	}
	if len(t.keys) >= MaxKinds {
		return otherKind
	}
	id := uint16(len(t.keys))
	t.ids[k] = id
	t.keys = append(t.keys, k)
	return id
}

// lifetime are the counts since the recorder started, for /metrics.
type lifetime struct {
	c     [nCounters]int64
	kinds [MaxKinds]int64
}

func (l *lifetime) count(c int) { l.c[c]++ }
