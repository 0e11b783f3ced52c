#include <mpi.h>
/* MPI's handles are macros (casts of library globals) that Swift cannot import; these
   functions return them. */
static inline MPI_Comm lucid_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm lucid_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype lucid_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype lucid_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype lucid_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype lucid_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Op lucid_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op lucid_mpi_max(void) { return MPI_MAX; }
static inline MPI_Errhandler lucid_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *lucid_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline MPI_Request lucid_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *lucid_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline int lucid_mpi_comm_type_shared(void) { return MPI_COMM_TYPE_SHARED; }
static inline int lucid_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int lucid_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline MPI_Info lucid_mpi_info_null(void) { return MPI_INFO_NULL; }
static inline int lucid_mpi_success(void) { return MPI_SUCCESS; }
