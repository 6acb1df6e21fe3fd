package sms

import (
	"strings"
	"testing"
)

func TestSplit_SingleAndLong(t *testing.T) {
	one, err := Split("有3张社保卡照片审核超期，请尽快审核。", 7)
	if err != nil || len(one) != 1 || one[0].UDHI || DecodeUCS2(one[0].Data) != "有3张社保卡照片审核超期，请尽快审核。" {
		t.Fatalf("single: %+v %v", one, err)
	}
	exactly70 := strings.Repeat("卡", 70)
	if s, _ := Split(exactly70, 1); len(s) != 1 {
		t.Fatalf("70 characters fit one SMS, got %d", len(s))
	}
	long := strings.Repeat("社", 67) + strings.Repeat("保", 67) + "卡"
	segs, err := Split(long, 9)
	if err != nil || len(segs) != 3 {
		t.Fatalf("long: %d segments, %v", len(segs), err)
	}
	var back strings.Builder
	for i, s := range segs {
		ref, total, n, body, ok := Concat(s.Data)
		if !ok || !s.UDHI || ref != 9 || total != 3 || n != i+1 || s.Total != 3 || s.Number != i+1 || len(s.Data) > 140 {
			t.Fatalf("segment %d: ref %d total %d n %d ok %v len %d", i, ref, total, n, ok, len(s.Data))
		}
		back.WriteString(DecodeUCS2(body))
	}
	if back.String() != long {
		t.Fatal("reassembled text differs")
	}
}

func TestSplit_KeepsSurrogatePairsWhole(t *testing.T) {
	// 𠀀 (U+20000, a rare name character) is two UTF-16 units; put one across the 67 boundary.
	text := strings.Repeat("a", 66) + "𠀀" + strings.Repeat("b", 10)
	segs, err := Split(text, 1)
	if err != nil {
		t.Fatal(err)
	}
	var back string
	for _, s := range segs {
		_, _, _, body, _ := Concat(s.Data)
		back += DecodeUCS2(body)
	}
	if back != text {
		t.Fatalf("got %q", back)
	}
	if _, err := Split(strings.Repeat("长", 67*MaxParts+1), 1); err != ErrTooLong {
		t.Fatalf("too long: %v", err)
	}
}
