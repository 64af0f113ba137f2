/* t/golden.c: see golden.h. */
#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
golden_slurp(const char *name, size_t *len)
{
	const char *top = getenv("top_srcdir");
	char path[4096];
	char *buf = NULL;
	long size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", top != NULL ? top : ".", name);
	f = fopen(path, "rb");
	if (f == NULL) {
		printf("# cannot open %s\n", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)size + 1)) != NULL) {
		*len = fread(buf, 1, (size_t)size, f);
		buf[*len] = '\0';
	}
	fclose(f);
	return buf;
}

const char *
golden_str(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);

	return cJSON_IsString(v) ? v->valuestring : "?";
}

void
golden_exact_numbers(cJSON *v)
{
	cJSON *c;

	cJSON_ArrayForEach(c, v)
	{
		if (cJSON_IsNumber(c)) {
			char buf[40];

			for (int prec = 15; prec <= 17; prec++) {
				snprintf(buf, sizeof(buf), "%.*g", prec, c->valuedouble);
				if (strtod(buf, NULL) == c->valuedouble)
					break;
			}
			c->type = cJSON_Raw;
			c->valuestring = strdup(buf);
		} else {
			golden_exact_numbers(c);
		}
	}
}

const ProtobufCFieldDescriptor *
golden_field_by_path(const ProtobufCMessageDescriptor *d, const char *path)
{
	char key[256];
	const ProtobufCFieldDescriptor *f = NULL;

	while (d != NULL && *path != '\0') {
		size_t n = strcspn(path, ".");

		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		f = protobuf_c_message_descriptor_get_field_by_name(d, key);
		if (f == NULL)
			return NULL;
		d = f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
		path += n + (path[n] == '.');
		if (*path != '\0' && d == NULL)
			return NULL;
	}
	return *path == '\0' ? f : NULL;
}
