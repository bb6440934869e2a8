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

# RFC 9112 2.2: "Although the line terminator for the start-line and fields is the sequence
# CRLF, a recipient MAY recognize a single LF as a line terminator and ignore any preceding
# CR." The head ends at the first empty line, however its lines end; whether a bare LF is
# then accepted is the server's choice (--accept-bare-lf), made in head.py.
end_of_head = re.compile(rb"\n\r?\n").search
# RFC 9112 5.2: obs-fold = OWS CRLF RWS, a field line starting with SP or HTAB.
has_obs_fold = re.compile(rb"\n[ \t]").search

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
# RFC 9110 5.6.3: "A recipient MUST parse for such bad whitespace [BWS] and remove it", so
# whitespace around ";" and "=" is taken; nothing else of the line may be whitespace: not
# after the size or the last extension, where the grammar has none (h11 takes it there).
# No CR, LF or NUL anywhere: qdtext excludes them. At most 20 hex digits, as h11 (a longer
# run is abuse, not a body); the value itself is capped by MAX_CHUNK_SIZE.
_QUOTED = rb'"(?:[\t \x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t \x21-\x7e\x80-\xff])*"'
_EXT = rb"[ \t]*;[ \t]*" + TOKEN + rb"(?:[ \t]*=[ \t]*(?:" + TOKEN + rb"|" + _QUOTED + rb"))?"
chunk_size_line = re.compile(rb"([0-9A-Fa-f]{1,20})(?:" + _EXT + rb")*").fullmatch
MAX_CHUNK_SIZE_DIGITS = 20
# A line that is long because of its extensions (not its size, or garbage): size, BWS, ";".
starts_chunk_extensions = re.compile(rb"[0-9A-Fa-f]{1,20}[ \t]*;").match
# 2**63 - 1: the largest size nginx (off_t) and Go (int64) read; more is no body anyone sends.
MAX_CHUNK_SIZE = 2**63 - 1

# RFC 9110 8.6:  Content-Length = 1*DIGIT; 20 digits at most, as h11.
MAX_CONTENT_LENGTH_DIGITS = 20
is_digits = re.compile(rb"[0-9]{1,%d}" % MAX_CONTENT_LENGTH_DIGITS).fullmatch

# RFC 9112 3.2: the four forms of request-target.
#   origin-form    = absolute-path [ "?" query ]           any method
#   absolute-form  = absolute-URI                          any method (proxies; we accept it)
#   authority-form = uri-host ":" port                     CONNECT only (3.2.3)
#   asterisk-form  = "*"                                   OPTIONS only (3.2.4)
# RFC 3986 3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then "://" for http(s).
# RFC 3986 3.2: authority = [ userinfo "@" ] host [ ":" port ]; the authority is what lies
# between "://" and the path, query or fragment.
absolute_form = re.compile(rb"[A-Za-z][A-Za-z0-9+.\-]*://([^/?#]*)[\x21-\x7e]*").fullmatch
is_authority_form = re.compile(rb"[^/?#@]+:[0-9]+").fullmatch

# RFC 9110 7.2:  Host = uri-host [ ":" port ]
# RFC 3986 3.2.2 and 3.2.3:
#   uri-host    = IP-literal / IPv4address / reg-name
#   IP-literal  = "[" ( IPv6address / IPvFuture ) "]"
#   IPvFuture   = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )
#   reg-name    = *( unreserved / pct-encoded / sub-delims )
#   unreserved  = ALPHA / DIGIT / "-" / "." / "_" / "~"
#   sub-delims  = "!" / "$" / "&" / "'" / "(" / ")" / "*" / "+" / "," / ";" / "="
#   port        = *DIGIT
# An IPv4address is a reg-name to this grammar; an IPv6address is checked for its characters
# (hex digits, ":", and "." for an embedded IPv4 address), not its shape. So: no userinfo
# ("@"), no whitespace or control characters, a port of digits only. An empty value is valid
# (RFC 9110 7.2: sent when the target URI has no authority). Commas are sub-delims, so "a,b"
# is a reg-name (nginx and Go take it too); "a, b", two values joined, has a space.
_SUB_DELIMS = rb"!$&'()*+,;="
_REG_NAME_CHARS = rb"[-A-Za-z0-9._~" + _SUB_DELIMS + rb"]*"
# reg-name as an unrolled loop: a run of plain characters, then any number of escapes each
# followed by a run, so a name without "%" is matched by one scan of one character class.
_REG_NAME = _REG_NAME_CHARS + rb"(?:%[0-9A-Fa-f]{2}" + _REG_NAME_CHARS + rb")*"
_IP_LITERAL = rb"\[(?:[0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[-A-Za-z0-9._~:" + _SUB_DELIMS + rb"]+)\]"
is_host = re.compile(rb"(?:" + _IP_LITERAL + rb"|" + _REG_NAME + rb")(?::[0-9]*)?").fullmatch
