"""The RFC 9112 / RFC 9110 grammar the fast engine enforces, as precompiled regexes.

Each rule is quoted above the pattern that implements it. Patterns are applied to whole
heads and whole lines (one C-level call each), never byte by byte.
"""

from __future__ import annotations

import re

# RFC 9110 5.6.2:
#   token = 1*tchar
#   tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
#           "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
is_token = re.compile(TOKEN).fullmatch

# RFC 9112 3:
#   request-line   = method SP request-target SP HTTP-version
#   method         = token
# RFC 9112 2.3:
#   HTTP-version   = HTTP-name "/" DIGIT "." DIGIT
#   HTTP-name      = %s"HTTP"
# The request-target is any run of VCHAR (%x21-7E) here; its form is checked separately
# (see TARGET_FORMS). Exactly one SP between the parts: RFC 9112 3 allows a recipient to
# accept other whitespace, but that is how smuggling via split-parsing starts.
request_line = re.compile(rb"(" + TOKEN + rb") ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])").fullmatch

# RFC 9112 5 and RFC 9110 5.5:
#   field-line    = field-name ":" OWS field-value OWS
#   field-name    = token
#   field-value   = *field-content
#   field-content = field-vchar [ 1*( SP / HTAB / field-vchar ) field-vchar ]
#   field-vchar   = VCHAR / obs-text
# As h11 does, other control characters are allowed inside values (cookies in the wild carry
# \x01), but never NUL, CR, LF, VT or FF (RFC 9110 5.5: CR, LF and NUL MUST be rejected).
# No whitespace is allowed between the name and the colon (RFC 9112 5.1: MUST reject, 400).
# Anchored at line starts (MULTILINE) and ending in CRLF, each match is exactly one line,
# so "as many matches as lines" means every line is valid — one findall for the whole head.
field_lines = re.compile(
    rb"^(" + TOKEN + rb"):[ \t]*((?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?)[ \t]*\r\n", re.MULTILINE
).findall

# RFC 9112 2.2: "a recipient MAY recognize a single LF as a line terminator and ignore any
# preceding CR". h11 does, in the head and the trailer section; so do we (not in chunk
# framing lines, where h11 and we require CRLF). The head ends at the first empty line.
end_of_head = re.compile(rb"\n\r?\n").search

# RFC 9112 7.1:
#   chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
#   chunk-size     = 1*HEXDIG
# RFC 9112 7.1.1:
#   chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
#   chunk-ext-name = token
#   chunk-ext-val  = token / quoted-string
# RFC 9110 5.6.4:
#   quoted-string  = DQUOTE *( qdtext / quoted-pair ) DQUOTE
#   qdtext         = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
#   quoted-pair    = "\" ( HTAB / SP / VCHAR / obs-text )
# At most 20 hex digits, as h11 (2**64 has 20 decimal digits; more is abuse, not a body).
# Trailing whitespace before CRLF is tolerated as h11 does ("some servers in the wild").
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = rb"[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + _QUOTED + rb"))?"
chunk_size_line = re.compile(rb"([0-9A-Fa-f]{1,20})(?:" + _EXT + rb")*[ \t]*").fullmatch

# RFC 9110 8.6:  Content-Length = 1*DIGIT; 20 digits at most, as h11.
MAX_CONTENT_LENGTH_DIGITS = 20
is_digits = re.compile(rb"[0-9]{1,%d}" % MAX_CONTENT_LENGTH_DIGITS).fullmatch

# RFC 9112 3.2: the four forms of request-target.
#   origin-form    = absolute-path [ "?" query ]           any method
#   absolute-form  = absolute-URI                          any method (proxies; we accept it)
#   authority-form = uri-host ":" port                     CONNECT only (3.2.3)
#   asterisk-form  = "*"                                   OPTIONS only (3.2.4)
# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" for http(s).
is_absolute_form = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://[\x21-\x7e]*").fullmatch
is_authority_form = re.compile(rb"[^/?#@]+:[0-9]+").fullmatch
