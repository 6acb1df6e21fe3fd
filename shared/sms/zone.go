package sms

import "time"

// ChinaTime is UTC+8, the time of every carrier timestamp and of the daily report.
var ChinaTime = time.FixedZone("CST", 8*3600)
