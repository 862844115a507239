/* dataimport.c: a test object that imports a data object (libc's stderr), which the jump table cannot
 * carry; the shared-memory loader must refuse it. */
#include <stdio.h>

FILE *ldr_import_stderr(void);
FILE *ldr_import_stderr(void)
{
	return stderr;
}
