/* estimate_unisparse.cu: placeholder until the device estimator lands. */
#include "plan.h"

us_status us_cuda_select_unisparse(us_cuda_plan *plan, const us_attn_args *a, cudaStream_t stream, us_error *err)
{
    (void)plan, (void)a, (void)stream;
    return us_error_set(err, US_ERR_UNSUPPORTED, "UniSparse selection on the GPU is not implemented yet");
}
