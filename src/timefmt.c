/* timefmt.c: RFC 3339 / ISO 8601 timestamps in and out, below the codec
 * files and everything else that stamps or reads a time. */
#include "timefmt.h"

#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
	int64_t era, doe, yoe, doy, mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int)(doy - (153 * mp + 2) / 5 + 1);
	*m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static int
days_in_month(int y, int m)
{
	static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 && leap ? 29 : days[m - 1];
}

/* N decimal digits at S; stops at the first non-digit, so never reads past
 * a NUL.  Inline: N is a constant at every call, so the loop unrolls. */
static inline bool
digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		/* one compare: the bytes below '0' wrap round to above 9 */
		unsigned c = (unsigned)(unsigned char)s[i] - '0';

		if (c > 9)
			return false;
		v = v * 10 + (int)c;
	}
	*out = v;
	return true;
}

bool
timefmt_parse(const char *s, int64_t *us)
{
	bool offset;

	return timefmt_parse_offset(s, us, &offset);
}

bool
timefmt_parse_offset(const char *s, int64_t *us, bool *has_offset)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac = 0, secs;
	const char *p = s;

	if (s == NULL)
		return false;
	if (!digits(p, 4, &y) || p[4] != '-' || !digits(p + 5, 2, &mo) || p[7] != '-' ||
	    !digits(p + 8, 2, &d))
		return false;
	p += 10;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return false;
	p++;
	if (!digits(p, 2, &h) || p[2] != ':' || !digits(p + 3, 2, &mi) || p[5] != ':' ||
	    !digits(p + 6, 2, &sec))
		return false;
	p += 8;
	if (*p == '.' || *p == ',') {
		int n = 0;

		static const int64_t scale[6] = {1000000, 100000, 10000, 1000, 100, 10};
		unsigned c;

		p++;
		if ((unsigned)(unsigned char)*p - '0' > 9)
			return false;
		for (; (c = (unsigned)(unsigned char)*p - '0') <= 9; p++, n++)
			if (n < 6)
				frac = frac * 10 + c;
		if (n < 6)
			frac *= scale[n];
	}
	*has_offset = *p == 'Z' || *p == 'z' || *p == '+' || *p == '-';
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		p++;
		if (!digits(p, 2, &oh))
			return false;
		p += 2;
		if (*p != '\0') {
			if (*p == ':')
				p++;
			if (!digits(p, 2, &om))
				return false;
			p += 2;
		}
		if (oh > 23 || om > 59)
			return false;
	}
	if (*p != '\0')
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
		return false;
	secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
	       sign * (oh * 3600 + om * 60);
	if (secs < days_from_civil(1, 1, 1) * 86400 || secs >= days_from_civil(10000, 1, 1) * 86400)
		return false;
	*us = secs * 1000000 + frac;
	return true;
}

/* V (0 <= V < 10^N) as N decimal digits at P, leading zeros kept; the end. */
static char *
put_digits(char *p, int64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--) {
		p[i] = (char)('0' + v % 10);
		v /= 10;
	}
	return p + n;
}

/* Split T (in UNIT per second) into civil time; floor division so that
 * instants before 1970 still print the right way round. */
static void
format_time(int64_t t, int64_t unit, int width, char out[TIMEFMT_SIZE])
{
	int64_t secs = t / unit, frac = t % unit, days, rem, y;
	int m, d;

	if (frac < 0) {
		frac += unit;
		secs--;
	}
	days = secs / 86400;
	rem = secs % 86400;
	if (rem < 0) {
		rem += 86400;
		days--;
	}
	civil_from_days(days, &y, &m, &d);
	if (y >= 0 && y <= 9999) {
		/* What the snprintf() below writes, without its format parsing:
		 * FRAC < UNIT has exactly WIDTH digits. */
		char *p = out;

		p = put_digits(p, y, 4);
		*p++ = '-';
		p = put_digits(p, m, 2);
		*p++ = '-';
		p = put_digits(p, d, 2);
		*p++ = 'T';
		p = put_digits(p, rem / 3600, 2);
		*p++ = ':';
		p = put_digits(p, rem / 60 % 60, 2);
		*p++ = ':';
		p = put_digits(p, rem % 60, 2);
		*p++ = '.';
		p = put_digits(p, frac, width);
		*p++ = 'Z';
		*p = '\0';
		return;
	}
	snprintf(out, TIMEFMT_SIZE, "%04lld-%02d-%02dT%02d:%02d:%02d.%0*lldZ", (long long)y, m, d,
	    (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), width, (long long)frac);
}

void
timefmt_ms(int64_t unix_ms, char out[TIMEFMT_SIZE])
{
	format_time(unix_ms, 1000, 3, out);
}

void
timefmt_us(int64_t us, char out[TIMEFMT_SIZE])
{
	format_time(us, 1000000, 6, out);
}
