/** The reference kernels read and write linear memory through the same views as the arena. */
export { MemViews } from "../../runtime/mem_views.ts";
