/* shm.c - create the shared mapping (see shm.h). */
#include "shm.h"

#include <sys/mman.h>

shm_state *shm_create(size_t endpoints)
{
    size_t size = sizeof(shm_state) + endpoints * sizeof(((shm_state *)NULL)->status_class[0]);
    shm_state *s = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (s == MAP_FAILED)
        return NULL;
    s->endpoints = endpoints; /* the mapping starts zeroed: every counter is 0 */
    return s;
}
