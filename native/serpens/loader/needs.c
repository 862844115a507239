/* needs.c: a test object that needs a library other than libc/libm/libhs/libcrypto (jansson), which the
 * shared-memory loader must refuse. */
#include <jansson.h>

void *ldr_needs_json(void);
void *ldr_needs_json(void)
{
	return json_object();
}
