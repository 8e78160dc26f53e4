# A new user's install: configures the cpc source tree into a fresh folder WITHOUT building
# anything, installs it (the plain `cmake --install`, every component) into a scratch prefix, checks
# that the library was installed and no program was, then configures, builds and runs a separate
# consumer project (find_package(cpc CONFIG REQUIRED)) linked with cpc::cpc and with cpc::native.
# -DCPC_SOURCE=<cpc source> -DWORK=<scratch folder> [-DCXX=<compiler>]
file(REMOVE_RECURSE ${WORK})
set(compiler)
if(CXX)
  set(compiler -DCMAKE_CXX_COMPILER=${CXX})
endif()
function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(rc)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

# CPC_WITH_MPI=AUTO: when MPI is installed the package also exports cpc::mpi, built below.
run("configuring cpc" ${CMAKE_COMMAND} -S ${CPC_SOURCE} -B ${WORK}/cpc-build ${compiler} -DCPC_WITH_MPI=AUTO)
run("cmake --install of a configured-only tree" ${CMAKE_COMMAND} --install ${WORK}/cpc-build --prefix ${WORK}/prefix)
foreach(f include/cpc/cpc.hpp include/cpc/core/cpu_features.hpp share/cmake/cpc/cpcConfig.cmake
          share/cmake/cpc/cpcTargets.cmake)
  if(NOT EXISTS ${WORK}/prefix/${f})
    message(FATAL_ERROR "the install lacks ${f}")
  endif()
endforeach()
file(GLOB programs ${WORK}/prefix/bin/*)
if(programs)
  message(FATAL_ERROR "programs were installed although none was built: ${programs}")
endif()

run("configuring the consumer" ${CMAKE_COMMAND} -S ${CPC_SOURCE}/tests/consumer -B ${WORK}/build
    -DCMAKE_PREFIX_PATH=${WORK}/prefix -DCMAKE_BUILD_TYPE=Release ${compiler})
run("building the consumer" ${CMAKE_COMMAND} --build ${WORK}/build --parallel 2)

# cpc::native: built for this machine, nothing unused, no warning.
run("the cpc::native consumer" ${WORK}/build/cpc_consumer_native)
message("cpc_consumer_native: ${out}${err}")
if(NOT out MATCHES "cpc consumer ok" OR NOT out MATCHES "unused cpu features: \\[\\]" OR err MATCHES "cpc: warning")
  message(FATAL_ERROR "cpc::native consumer: expected no unused CPU features and no warning")
endif()
# cpc::cpc alone: baseline flags. When the CPU has extensions the build lacks, exactly one warning
# naming them and the flag to add; otherwise none. CPC_NO_CPU_WARNING=1 silences it.
run("the cpc::cpc consumer" ${WORK}/build/cpc_consumer)
message("cpc_consumer: ${out}${err}")
string(REGEX MATCH "unused cpu features: \\[([^]]*)\\]" _ "${out}")
set(unused "${CMAKE_MATCH_1}")
string(REGEX MATCHALL "cpc: warning: this program was compiled without" warnings "${err}")
list(LENGTH warnings n)
if(unused)
  if(NOT n EQUAL 1 OR NOT err MATCHES "without ${unused}, which this CPU has" OR NOT err MATCHES "-march=native")
    message(FATAL_ERROR "cpc::cpc consumer: expected one warning naming ${unused} and -march=native, got ${n}")
  endif()
  run("the cpc::cpc consumer, silenced" ${CMAKE_COMMAND} -E env CPC_NO_CPU_WARNING=1 ${WORK}/build/cpc_consumer)
  if(err MATCHES "cpc: warning")
    message(FATAL_ERROR "CPC_NO_CPU_WARNING=1 did not silence the warning")
  endif()
elseif(NOT n EQUAL 0)
  message(FATAL_ERROR "cpc::cpc consumer: a warning although no CPU feature is unused")
endif()
# cpc::mpi (when MPI was found): run alone, the program must not start MPI.
if(EXISTS ${WORK}/build/cpc_consumer_mpi)
  run("the cpc::mpi consumer" ${WORK}/build/cpc_consumer_mpi)
  message("cpc_consumer_mpi: ${out}${err}")
  if(NOT out MATCHES "cpc mpi consumer ok: one process, mean 1 0")
    message(FATAL_ERROR "cpc::mpi consumer: unexpected output")
  endif()
endif()
message("install_consumer: the library installed from a configured-only tree; cpc::cpc and cpc::native work")
