package twilio

// SetFindPaging shrinks the pages of s.Find and their cap, so that tests
// page through a few messages.
func SetFindPaging(s *Sender, pageSize, maxPages int) {
	s.findPageSize, s.findMaxPages = pageSize, maxPages
}

// ParseDate is parseDate, for the fuzz test.
var ParseDate = parseDate
