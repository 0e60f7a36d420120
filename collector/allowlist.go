package collector

// LabelAllowlist is what --container.labels allows: container label keys
// by name, or every key with "*". The zero value allows none. The
// exposition's docker_container_labels and any other view of the labels
// (the live view) share it, so that a label is shown in one place exactly
// when it is shown in all.
type LabelAllowlist struct {
	all  bool
	keys map[string]bool
}

// NewLabelAllowlist makes the allowlist of keys; "*" among them allows
// every key.
func NewLabelAllowlist(keys []string) LabelAllowlist {
	var a LabelAllowlist
	for _, k := range keys {
		if k == "*" {
			a.all = true
			continue
		}
		if a.keys == nil {
			a.keys = make(map[string]bool, len(keys))
		}
		a.keys[k] = true
	}
	return a
}

// Allows says whether the label key may be shown.
func (a LabelAllowlist) Allows(key string) bool { return a.all || a.keys[key] }

// None says whether no key at all is allowed.
func (a LabelAllowlist) None() bool { return !a.all && len(a.keys) == 0 }

// Filter returns the labels that a allows, or nil if none. It never
// changes labels, which the store shares with every reader.
func (a LabelAllowlist) Filter(labels map[string]string) map[string]string {
	if a.None() {
		return nil
	}
	var out map[string]string
	for k, v := range labels {
		if a.Allows(k) {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v
		}
	}
	return out
}
