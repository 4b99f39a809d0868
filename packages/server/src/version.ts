export { VERSION } from '@insitu/core';
