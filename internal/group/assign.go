package group

import (
	"encoding/binary"
	"encoding/json"
	"hash/fnv"
	"slices"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// How the mirror partitions are shared.
//
// The members that may own partitions (the owners: not standbys, of the
// newest state format present) are listed in every decision. A partition,
// named by a key (its mirror topic and number), belongs to the owner that
// wins a rendezvous hash of the key (highest random weight): every member
// computes the same answer from the list alone, so a mirror created
// between two rebalances is copied at once by its owner without another
// rebalance, and a member joining or leaving moves only the partitions it
// gains or loses.
//
// A partition moves only after its old owner has stopped it (an
// incremental, cooperative hand-over, as Kafka's cooperative protocols do
// it). Every member tells, in its JoinGroup metadata, the owner list of
// the last decision it has applied (Info.Stable): the partitions it may
// still be copying are exactly those the hash gives it under that list.
// When those lists differ from the new one, the decision is a revoking
// one: each member keeps what stays with it, gives up what moves, and
// takes only what no live member may still be copying (the partitions of
// members that are gone). Once a member has applied it (its copies of
// what moved have stopped), it joins again, now telling the new list;
// when every member tells it, the next decision is stable and the moved
// partitions start at their new owners. A member that died is not waited
// for: its partitions go at once, and the broker refuses a late write of
// it (internal/mirror/fence.go).

// decision is what the leader of a rebalance sends every member.
type decision struct {
	Active  string       `json:"active"` // member id, "" for none
	Members []memberInfo `json:"members"`
	// Owners are the member ids that own partitions, sorted.
	Owners []string `json:"owners"`
	// Revoke is set while a member may still copy partitions the owners
	// give to another; Prev holds each member's Stable list then.
	Revoke bool                `json:"revoke,omitempty"`
	Prev   map[string][]string `json:"prev,omitempty"`
}

type memberInfo struct {
	ID   string `json:"id"`
	Info Info   `json:"info"`
}

// owner returns the owner of key among owners, "" for none: the one with
// the highest hash of (owner, key).
func owner(owners []string, key string) string {
	best, bestW := "", uint64(0)
	for _, o := range owners {
		if w := weight(o, key); best == "" || w > bestW || (w == bestW && o < best) {
			best, bestW = o, w
		}
	}
	return best
}

// weight is the rendezvous hash of an owner and a key: FNV-1a, finished
// with SplitMix64's mixer so that similar keys spread well.
func weight(o, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(o))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// owns reports whether member self owns key under decision d.
func (d *decision) owns(self, key string) bool {
	if owner(d.Owners, key) != self {
		return false
	}
	if !d.Revoke {
		return true
	}
	// Another live member may still copy it: wait for it to let go.
	for _, m := range d.Members {
		if m.ID != self && owner(d.Prev[m.ID], key) == m.ID {
			return false
		}
	}
	return true
}

// assign decides, as the group's leader, which member is active and which
// members own partitions. The active member is the one active before (the
// latest generation, if two claim it after a split), else the oldest
// owner. Only members of the highest state format present may be active
// or own partitions, so that an upgrade moves the work to the new version
// and never back.
func (m *Member) assign(gen int32, members []kmsg.JoinGroupResponseMember) []kmsg.SyncGroupRequestGroupAssignment {
	var all []memberInfo
	format := 0
	for _, mem := range members {
		var info Info
		if err := json.Unmarshal(mem.ProtocolMetadata, &info); err != nil {
			m.cfg.Log.Warn("group member with unreadable metadata", "member", mem.MemberID, "err", err)
			continue
		}
		all = append(all, memberInfo{mem.MemberID, info})
		format = max(format, info.Format)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := all[i].Info, all[j].Info
		if a.ActiveGeneration != b.ActiveGeneration {
			return a.ActiveGeneration > b.ActiveGeneration
		}
		if a.StartedMs != b.StartedMs {
			return a.StartedMs < b.StartedMs
		}
		return all[i].ID < all[j].ID
	})
	d := decision{Members: all}
	for _, c := range all {
		if c.Info.Standby || c.Info.Format != format {
			continue
		}
		if d.Active == "" {
			d.Active = c.ID
		}
		d.Owners = append(d.Owners, c.ID)
	}
	slices.Sort(d.Owners)
	for _, c := range all {
		// Only a member that may own something under the list it tells
		// can be copying what moves.
		if slices.Contains(c.Info.Stable, c.ID) && !slices.Equal(c.Info.Stable, d.Owners) {
			d.Revoke = true
		}
	}
	if d.Revoke {
		d.Prev = map[string][]string{}
		for _, c := range all {
			d.Prev[c.ID] = c.Info.Stable
		}
	}
	b, _ := json.Marshal(d)
	out := make([]kmsg.SyncGroupRequestGroupAssignment, 0, len(members))
	for _, mem := range members {
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = mem.MemberID, b
		out = append(out, a)
	}
	if d.Active == "" {
		m.cfg.Log.Warn("no member of the group can be active", "group", m.cfg.Group, "generation", gen, "members", len(all))
	}
	return out
}

// keyOf names a mirror partition for the hash.
func keyOf(topic string, partition int32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], uint32(partition))
	return topic + "\x00" + string(b[:])
}
