// Package mask renders personal data for display with the common Chinese masking
// (脱敏) rules (GB/T 35273-2020 display restriction, JR/T 0171-2020 Appendix A for
// financial accounts):
//
//	IDNumber     110***********1234   18 or 15 characters: first 3 and last 4;
//	                                  other lengths (HK/Macau/Taiwan permits, passports): first 1 and last 2,
//	                                  fewer when the value is short
//	Phone        138****1234          mainland mobile, with or without +86/0086; other numbers keep at most the last quarter
//	Name         张* 张** 欧阳** J*** *****   surname only (compound surnames kept whole); Latin names keep the first letter
//	BankAccount  622202******1234     16 or more digits: first 6 and last 4; 8–15: last 4; shorter: nothing
//
// Every function is total: any UTF-8 (or invalid UTF-8) input gives valid UTF-8 output,
// never panics, and never reveals more characters than its rule. Masked characters are
// replaced one for one by '*', so the length stays visible, as on the card itself.
// Responses show PII only through these functions unless the caller's role may see it
// and the access is audited.
package mask

import (
	"strings"
	"unicode"
)

// Star replaces every hidden character.
const Star = '*'

// keep returns rs with everything but the first head and last tail runes replaced by Star.
// When head+tail would leave nothing hidden, everything is hidden.
func keep(rs []rune, head, tail int) string {
	n := len(rs)
	if head < 0 || tail < 0 || head+tail >= n {
		head, tail = 0, 0
	}
	var b strings.Builder
	b.Grow(n * 3)
	for i, r := range rs {
		if i < head || i >= n-tail {
			b.WriteRune(r) // []rune turned invalid bytes into U+FFFD, so this is valid UTF-8
		} else {
			b.WriteRune(Star)
		}
	}
	return b.String()
}

// IDNumber masks an identity document number.
func IDNumber(s string) string {
	rs := []rune(strings.TrimSpace(s))
	n := len(rs)
	switch {
	case n >= 15:
		return keep(rs, 3, 4)
	case n >= 8:
		return keep(rs, 1, 2)
	case n >= 5:
		return keep(rs, 0, 1)
	default:
		return keep(rs, 0, 0)
	}
}

// Phone masks a telephone number. Spaces, hyphens, dots and brackets are dropped and a
// mainland mobile number loses its +86/0086/86 prefix, so every form of the same mobile
// number masks alike.
func Phone(s string) string {
	rs := stripSeparators(s)
	if m := mainlandMobile(rs); m != nil {
		rs = m
	}
	n := len(rs)
	if n >= 11 {
		return keep(rs, 3, 4)
	}
	return keep(rs, 0, n/4)
}

// BankAccount masks a bank card or account number.
func BankAccount(s string) string {
	rs := stripSeparators(s)
	n := len(rs)
	switch {
	case n >= 16:
		return keep(rs, 6, 4)
	case n >= 8:
		return keep(rs, 0, 4)
	default:
		return keep(rs, 0, 0)
	}
}

// Name masks a person's name: a Chinese name keeps its surname (a compound surname such
// as 欧阳 both characters, when the given name is not empty), a Latin-script name keeps
// its first letter and its word separators.
func Name(s string) string {
	rs := []rune(strings.TrimSpace(s))
	n := len(rs)
	if n <= 1 {
		return keep(rs, 0, 0)
	}
	if unicode.Is(unicode.Latin, rs[0]) {
		var b strings.Builder
		b.WriteRune(rs[0])
		for _, r := range rs[1:] {
			if isNameSeparator(r) {
				b.WriteRune(r)
			} else {
				b.WriteRune(Star)
			}
		}
		return b.String()
	}
	if n >= 3 && compoundSurnames[string(rs[:2])] {
		return keep(rs, 2, 0)
	}
	return keep(rs, 1, 0)
}

func isNameSeparator(r rune) bool {
	switch r {
	case ' ', '-', '\'', '.', '·', '•', ',':
		return true
	}
	return false
}

func stripSeparators(s string) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch r {
		case ' ', '\t', '-', '.', '(', ')', '（', '）', '\u00a0', '\u3000':
			continue
		}
		out = append(out, r)
	}
	return out
}

// mainlandMobile returns the 11-digit national number when rs is a mainland mobile
// number (1[3-9]xxxxxxxxx), optionally prefixed by +86, 0086 or 86; else nil.
func mainlandMobile(rs []rune) []rune {
	for _, p := range []string{"+86", "0086", "86", ""} {
		pr := []rune(p)
		if len(rs) != len(pr)+11 || string(rs[:len(pr)]) != p {
			continue
		}
		m := rs[len(pr):]
		if m[0] != '1' || m[1] < '3' || m[1] > '9' {
			return nil
		}
		for _, r := range m {
			if r < '0' || r > '9' {
				return nil
			}
		}
		return m
	}
	return nil
}

// compoundSurnames are the two-character surnames (复姓) of the 百家姓 and those still
// common today.
var compoundSurnames = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 长孙 宇文 司徒 夏侯 轩辕 令狐
		端木 西门 南宫 独孤 万俟 闻人 赫连 澹台 公冶 宗政 濮阳 淳于 单于 太叔 申屠 钟离 呼延 拓跋 百里 东郭
		南门 羊舌 微生 公羊 梁丘 左丘 第五 谷梁 乐正 司空 司寇 亓官 仉督 段干 巫马 漆雕 壤驷 公良 子车 颛孙
		鲜于 闾丘 东门 公西 歐陽 司馬 諸葛 長孫 夏侯 軒轅 端木 鍾離 聞人 宗政`) {
		compoundSurnames[s] = true
	}
}
