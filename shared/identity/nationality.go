package identity

import (
	"fmt"
	"strconv"

	"golang.org/x/text/language"
)

// country is one ISO 3166-1 entry with its Chinese display name (GB/T 2659 short form as
// used on Chinese official forms).
type country struct {
	alpha3  string
	numeric string // three digits, zero-padded
	name    string
}

// countries lists the countries whose nationals most often live in China. The table is
// deliberately small; a valid ISO 3166-1 code missing from it is still accepted (the
// ID gets NationalityUnknown and an empty Nationality, and the caller asks the
// applicant). A code listed here is accepted even if the ISO data in x/text does not
// know it, so special codes can be added here.
var countries = []country{
	// Asia
	{"JPN", "392", "日本"},
	{"KOR", "410", "韩国"},
	{"PRK", "408", "朝鲜"},
	{"MNG", "496", "蒙古国"},
	{"SGP", "702", "新加坡"},
	{"MYS", "458", "马来西亚"},
	{"THA", "764", "泰国"},
	{"VNM", "704", "越南"},
	{"PHL", "608", "菲律宾"},
	{"IDN", "360", "印度尼西亚"},
	{"BRN", "096", "文莱"},
	{"MMR", "104", "缅甸"},
	{"LAO", "418", "老挝"},
	{"KHM", "116", "柬埔寨"},
	{"IND", "356", "印度"},
	{"PAK", "586", "巴基斯坦"},
	{"BGD", "050", "孟加拉国"},
	{"NPL", "524", "尼泊尔"},
	{"LKA", "144", "斯里兰卡"},
	{"BTN", "064", "不丹"},
	{"MDV", "462", "马尔代夫"},
	{"AFG", "004", "阿富汗"},
	{"KAZ", "398", "哈萨克斯坦"},
	{"UZB", "860", "乌兹别克斯坦"},
	{"KGZ", "417", "吉尔吉斯斯坦"},
	{"TJK", "762", "塔吉克斯坦"},
	{"TKM", "795", "土库曼斯坦"},
	{"AZE", "031", "阿塞拜疆"},
	{"GEO", "268", "格鲁吉亚"},
	{"ARM", "051", "亚美尼亚"},
	{"TUR", "792", "土耳其"},
	{"IRN", "364", "伊朗"},
	{"IRQ", "368", "伊拉克"},
	{"SYR", "760", "叙利亚"},
	{"JOR", "400", "约旦"},
	{"LBN", "422", "黎巴嫩"},
	{"ISR", "376", "以色列"},
	{"SAU", "682", "沙特阿拉伯"},
	{"ARE", "784", "阿拉伯联合酋长国"},
	{"KWT", "414", "科威特"},
	{"QAT", "634", "卡塔尔"},
	{"OMN", "512", "阿曼"},
	{"BHR", "048", "巴林"},
	{"YEM", "887", "也门"},
	// Europe
	{"GBR", "826", "英国"},
	{"IRL", "372", "爱尔兰"},
	{"FRA", "250", "法国"},
	{"DEU", "276", "德国"},
	{"ITA", "380", "意大利"},
	{"ESP", "724", "西班牙"},
	{"PRT", "620", "葡萄牙"},
	{"NLD", "528", "荷兰"},
	{"BEL", "056", "比利时"},
	{"LUX", "442", "卢森堡"},
	{"CHE", "756", "瑞士"},
	{"AUT", "040", "奥地利"},
	{"SWE", "752", "瑞典"},
	{"NOR", "578", "挪威"},
	{"DNK", "208", "丹麦"},
	{"FIN", "246", "芬兰"},
	{"ISL", "352", "冰岛"},
	{"GRC", "300", "希腊"},
	{"POL", "616", "波兰"},
	{"CZE", "203", "捷克"},
	{"SVK", "703", "斯洛伐克"},
	{"HUN", "348", "匈牙利"},
	{"ROU", "642", "罗马尼亚"},
	{"BGR", "100", "保加利亚"},
	{"SRB", "688", "塞尔维亚"},
	{"HRV", "191", "克罗地亚"},
	{"SVN", "705", "斯洛文尼亚"},
	{"LTU", "440", "立陶宛"},
	{"LVA", "428", "拉脱维亚"},
	{"EST", "233", "爱沙尼亚"},
	{"BLR", "112", "白俄罗斯"},
	{"UKR", "804", "乌克兰"},
	{"RUS", "643", "俄罗斯"},
	// Americas
	{"USA", "840", "美国"},
	{"CAN", "124", "加拿大"},
	{"MEX", "484", "墨西哥"},
	{"CUB", "192", "古巴"},
	{"BRA", "076", "巴西"},
	{"ARG", "032", "阿根廷"},
	{"CHL", "152", "智利"},
	{"PER", "604", "秘鲁"},
	{"COL", "170", "哥伦比亚"},
	{"VEN", "862", "委内瑞拉"},
	// Oceania
	{"AUS", "036", "澳大利亚"},
	{"NZL", "554", "新西兰"},
	{"FJI", "242", "斐济"},
	{"PNG", "598", "巴布亚新几内亚"},
	// Africa
	{"ZAF", "710", "南非"},
	{"EGY", "818", "埃及"},
	{"MAR", "504", "摩洛哥"},
	{"DZA", "012", "阿尔及利亚"},
	{"TUN", "788", "突尼斯"},
	{"SDN", "729", "苏丹"},
	{"NGA", "566", "尼日利亚"},
	{"GHA", "288", "加纳"},
	{"CMR", "120", "喀麦隆"},
	{"ETH", "231", "埃塞俄比亚"},
	{"KEN", "404", "肯尼亚"},
	{"TZA", "834", "坦桑尼亚"},
	{"AGO", "024", "安哥拉"},
	{"ZMB", "894", "赞比亚"},
	{"ZWE", "716", "津巴布韦"},
	// China itself: rejected on foreigners' IDs, but known so that the rejection is
	// specific rather than "unknown code".
	{"CHN", "156", "中国"},
}

var countryByCode = func() map[string]country {
	m := make(map[string]country, 2*len(countries))
	for _, c := range countries {
		m[c.alpha3] = c
		m[c.numeric] = c
	}
	return m
}()

// NationalityName returns the Chinese display name for an ISO 3166-1 alpha-3 ("KAZ") or
// numeric ("398") country code from the built-in table.
func NationalityName(code string) (string, bool) {
	c, ok := countryByCode[code]
	if !ok || c.name == "" {
		return "", false
	}
	return c.name, true
}

// lookupCountry resolves a 3-letter or 3-digit code. ok is false when the code is not an
// ISO 3166-1 country; a valid country missing from the table comes back with an empty
// name.
func lookupCountry(code string) (country, bool) {
	if c, ok := countryByCode[code]; ok {
		return c, true
	}
	if len(code) != 3 {
		return country{}, false
	}
	var r language.Region
	var err error
	if allDigits(code) {
		n, _ := strconv.Atoi(code)
		r, err = language.EncodeM49(n)
	} else {
		r, err = language.ParseRegion(code)
	}
	if err != nil || !r.IsCountry() {
		return country{}, false
	}
	// Round-trip to reject aliases and M.49 groupings that map onto a country: the code
	// must be the region's own ISO 3166-1 code.
	if allDigits(code) {
		if r.M49() != atoi(code) {
			return country{}, false
		}
		return country{alpha3: r.ISO3(), numeric: code}, true
	}
	if r.ISO3() != code {
		return country{}, false
	}
	return country{alpha3: code, numeric: fmt.Sprintf("%03d", r.M49())}, true
}
