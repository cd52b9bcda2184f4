/* flash_sparse.cu: placeholder until the kernel lands. */
#include "plan.h"

us_status us_cuda_attention_sparse(const us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    (void)plan, (void)a, (void)stream;
    return us_error_set(err, US_ERR_UNSUPPORTED, "GPU attention is not implemented yet");
}
