package mask

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestRules(t *testing.T) {
	cases := []struct {
		fn       func(string) string
		in, want string
	}{
		{IDNumber, "110101199003071234", "110***********1234"},
		{IDNumber, " 11010119900307123x ", "110***********123x"},
		{IDNumber, "110101900307123", "110********7123"},
		{IDNumber, "810000199001011234", "810***********1234"},
		{IDNumber, "H12345678", "H******78"},
		{IDNumber, "12345678", "1*****78"},
		{IDNumber, "12345", "****5"},
		{IDNumber, "1234", "****"},
		{IDNumber, "", ""},
		{Phone, "13812341234", "138****1234"},
		{Phone, "+86 138-1234-1234", "138****1234"},
		{Phone, "008613812341234", "138****1234"},
		{Phone, "8613812341234", "138****1234"},
		{Phone, "010-12345678", "010****5678"},
		{Phone, "12345678", "******78"},
		{Phone, "123", "***"},
		{Name, "张三", "张*"},
		{Name, "张三丰", "张**"},
		{Name, "欧阳修", "欧阳*"},
		{Name, "欧阳娜娜", "欧阳**"},
		{Name, "欧阳", "欧*"},
		{Name, "张", "*"},
		{Name, "阿卜杜·热合曼", "阿******"},
		{Name, "John Smith", "J*** *****"},
		{Name, "O'Neil-Smith Mary", "O'****-***** ****"},
		{Name, "𠀀𠀁", "𠀀*"},
		{BankAccount, "6222021234567890123", "622202*********0123"},
		{BankAccount, "6222 0212 3456 7890", "622202******7890"},
		{BankAccount, "123456789012", "********9012"},
		{BankAccount, "1234567", "*******"},
	}
	for _, c := range cases {
		if got := c.fn(c.in); got != c.want {
			t.Errorf("%q: want %q, got %q", c.in, c.want, got)
		}
	}
}

func TestInvalidUTF8(t *testing.T) {
	for _, fn := range []func(string) string{IDNumber, Phone, Name, BankAccount} {
		if out := fn("\xff\xfe12345678901234567"); !utf8.ValidString(out) || !strings.ContainsRune(out, Star) {
			t.Errorf("invalid input gave %q", out)
		}
	}
}
