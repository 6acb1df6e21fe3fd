package sms

import "github.com/sscard/platform/events"

// ChinaTime is UTC+8, the time of every carrier timestamp and of the daily report.
var ChinaTime = events.ChinaTime
