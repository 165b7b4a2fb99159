/* shm.c - create the shared mapping (see shm.h). */
#include "shm.h"

#include <sys/mman.h>

shm_state *shm_create(void)
{
    void *p = mmap(NULL, sizeof(shm_state), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
