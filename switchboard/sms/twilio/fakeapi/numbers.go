package fakeapi

// This file holds the IncomingPhoneNumbers endpoints the node's webhook
// registration (-twilio-register) uses.

import (
	"net/http"
	"strings"
)

// AddNumber adds an incoming phone number to the account and returns it.
func (s *Server) AddNumber(phone string) Number {
	n := &Number{Sid: "PN" + randomHex(), PhoneNumber: phone, SmsMethod: "POST"}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.numbers = append(s.numbers, n)
	return *n
}

// SetNumber replaces the number with n.Sid (to attach an SMS application).
func (s *Server) SetNumber(n Number) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, old := range s.numbers {
		if old.Sid == n.Sid {
			s.numbers[i] = &n
		}
	}
}

// Number returns the incoming phone number phone, as last updated.
func (s *Server) Number(phone string) (Number, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.numbers {
		if n.PhoneNumber == phone {
			return *n, true
		}
	}
	return Number{}, false
}

func (s *Server) listNumbers(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	want := r.URL.Query().Get("PhoneNumber")
	list := []map[string]any{}
	s.mu.Lock()
	for _, n := range s.numbers {
		if want == "" || n.PhoneNumber == want {
			list = append(list, numberJSON(s.accountSID, n))
		}
	}
	s.mu.Unlock()
	uri := "/2010-04-01/Accounts/" + s.accountSID + "/IncomingPhoneNumbers.json"
	writeJSON(w, http.StatusOK, map[string]any{
		"incoming_phone_numbers": list, "page": 0, "page_size": 50, "start": 0, "end": len(list),
		"uri": uri, "first_page_uri": uri, "next_page_uri": nil, "previous_page_uri": nil,
	})
}

func (s *Server) updateNumber(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	if err := r.ParseForm(); !ok || err != nil {
		writeError(w, http.StatusBadRequest, 20001, "Unable to parse request")
		return
	}
	method := r.PostForm.Get("SmsMethod")
	if method != "" && method != "GET" && method != "POST" {
		writeError(w, http.StatusBadRequest, 21601, "SmsMethod must be GET or POST")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.numbers {
		if n.Sid != sid {
			continue
		}
		if v, ok := r.PostForm["SmsUrl"]; ok {
			n.SmsURL = v[0]
		}
		if method != "" {
			n.SmsMethod = method
		}
		writeJSON(w, http.StatusOK, numberJSON(s.accountSID, n))
		return
	}
	writeError(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
}

func numberJSON(account string, n *Number) map[string]any {
	var app any
	if n.SmsAppSid != "" {
		app = n.SmsAppSid
	}
	return map[string]any{
		"sid": n.Sid, "account_sid": account, "phone_number": n.PhoneNumber, "friendly_name": n.PhoneNumber,
		"sms_url": n.SmsURL, "sms_method": n.SmsMethod, "sms_application_sid": app,
		"uri": "/2010-04-01/Accounts/" + account + "/IncomingPhoneNumbers/" + n.Sid + ".json",
	}
}
