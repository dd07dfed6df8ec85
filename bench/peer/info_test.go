package peer

import "testing"

func TestParseInfoField(t *testing.T) {
	info := "# Memory\r\nused_memory:1234567\r\nused_memory_human:1.18M\r\nused_memory_rss:9000\r\n"
	if v, err := ParseInfoField(info, "used_memory"); err != nil || v != 1234567 {
		t.Errorf("used_memory %d %v", v, err)
	}
	if v, err := ParseInfoField(info, "used_memory_rss"); err != nil || v != 9000 {
		t.Errorf("used_memory_rss %d %v", v, err)
	}
	if _, err := ParseInfoField(info, "used_memory_peak"); err == nil {
		t.Error("missing field found")
	}
	if _, err := ParseInfoField(info, "used_memory_human"); err == nil {
		t.Error("non-integer field parsed")
	}
}
