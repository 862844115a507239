/* tls.c: a test object with a thread-local variable, which the shared-memory loader must refuse. */
__thread int ldr_tls_counter;

int ldr_tls_bump(void);
int ldr_tls_bump(void)
{
	return ++ldr_tls_counter;
}
